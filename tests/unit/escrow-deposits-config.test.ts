import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config.js';

const services = { DATABASE_URL: 'postgresql://127.0.0.1:5432/unused', REDIS_URL: 'redis://127.0.0.1:6379', DATA_DIR: '.data/test' };
const productionSecrets = {
  NODE_ENV: 'production',
  JWT_SECRET: randomBytes(32).toString('hex'),
  METRICS_TOKEN: randomBytes(24).toString('hex'),
  VAULT_KEY: randomBytes(32).toString('hex'),
  ADMIN_EMAIL: 'admin@example.test',
  ADMIN_PASSWORD: 'admin-password-123',
};

describe('ESCROW_DEPOSITS', () => {
  it('defaults to the development adapter outside production and to none in production', () => {
    expect(loadConfig({ ...services, NODE_ENV: 'development' }).escrowDeposits).toBe('development');
    expect(loadConfig({ ...services, NODE_ENV: 'test' }).escrowDeposits).toBe('development');
    expect(loadConfig({ ...services, ...productionSecrets }).escrowDeposits).toBe('none');
    expect(loadConfig({ ...services, NODE_ENV: 'development', ESCROW_DEPOSITS: 'none' }).escrowDeposits).toBe('none');
  });

  it('refuses the development adapter in production, naming the variable: it confirms deposits no money backs', () => {
    expect(() => loadConfig({ ...services, ...productionSecrets, ESCROW_DEPOSITS: 'development' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...services, ...productionSecrets, ESCROW_DEPOSITS: 'development' })).toThrow(/ESCROW_DEPOSITS/);
    expect(() => loadConfig({ ...services, ESCROW_DEPOSITS: 'wallet' })).toThrow(/ESCROW_DEPOSITS/);
  });
});
