import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config.js';

const services = {
  DATABASE_URL: 'postgresql://127.0.0.1:5432/unused',
  REDIS_URL: 'redis://127.0.0.1:6379',
  DATA_DIR: '.data/test',
  NODE_ENV: 'test',
};

describe('TIER_MAX_QUEUED and TIER_MAX_ACTIVE', () => {
  it('default to starter 1,000 / 50, pro 20,000 / 500, enterprise 100,000 / 5,000', () => {
    const config = loadConfig(services);
    expect(config.tierMaxQueued).toEqual({ starter: 1000, pro: 20_000, enterprise: 100_000 });
    expect(config.tierMaxActive).toEqual({ starter: 50, pro: 500, enterprise: 5000 });
  });

  it('take a tier=count list; a tier left out keeps its default', () => {
    const config = loadConfig({ ...services, TIER_MAX_QUEUED: 'starter=10, enterprise=7', TIER_MAX_ACTIVE: 'pro=2' });
    expect(config.tierMaxQueued).toEqual({ starter: 10, pro: 20_000, enterprise: 7 });
    expect(config.tierMaxActive).toEqual({ starter: 50, pro: 2, enterprise: 5000 });
  });

  it('refuse an unknown or repeated tier and a count that is not a whole number ≥ 1, naming the variable', () => {
    for (const [name, value] of [
      ['TIER_MAX_QUEUED', 'gold=5'],
      ['TIER_MAX_QUEUED', 'starter=5,starter=6'],
      ['TIER_MAX_ACTIVE', 'pro=0'],
      ['TIER_MAX_ACTIVE', 'pro=1.5'],
      ['TIER_MAX_ACTIVE', 'pro'],
    ] as const) {
      expect(() => loadConfig({ ...services, [name]: value }), `${name}=${value}`).toThrow(ConfigError);
      expect(() => loadConfig({ ...services, [name]: value })).toThrow(new RegExp(name));
    }
  });
});
