import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config.js';
import { productionEnv, servicesEnv } from '../helpers/config-env.js';

const services = servicesEnv;
const productionSecrets = productionEnv;

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
