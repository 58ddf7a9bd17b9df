import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config.js';
import { perShardCap } from '../../queue/fair-share/fair-queues.js';

const services = { DATABASE_URL: 'postgresql://127.0.0.1:5432/unused', REDIS_URL: 'redis://127.0.0.1:6379', DATA_DIR: '.data/test' };

describe('fair-sharing configuration', () => {
  it('defaults to fair sharing on, with a 50 ms window and weights starter 1, pro 4, enterprise 16', () => {
    const config = loadConfig(services);
    expect(config.fairSharing).toBe(true);
    expect(config.fairWindowMs).toBe(50);
    expect(config.fairWeights).toEqual({ starter: 1, pro: 4, enterprise: 16 });
    expect(config.fairMaxReleasedPerCustomer).toBe(4096);
    expect(config.fairBaseCostMs).toBe(1);
    expect(config.fairMaxChargeMs).toBe(5000);
  });

  it('reads FAIR_WEIGHTS in any order, with spaces and fractions', () => {
    const config = loadConfig({ ...services, FAIR_WEIGHTS: ' enterprise=8 , starter=0.5,pro=2', FAIR_SHARING: 'false' });
    expect(config.fairWeights).toEqual({ starter: 0.5, pro: 2, enterprise: 8 });
    expect(config.fairSharing).toBe(false);
  });

  it.each([
    ['starter=1,pro=4', /FAIR_WEIGHTS: names no weight for enterprise/],
    ['starter=1,pro=4,enterprise=16,pro=2', /FAIR_WEIGHTS: names pro twice/],
    ['starter=1,pro=0,enterprise=16', /FAIR_WEIGHTS: "pro=0" is not tier=weight/],
    ['starter=1,pro=x,enterprise=16', /FAIR_WEIGHTS: "pro=x"/],
    ['starter=1,gold=4,enterprise=16', /FAIR_WEIGHTS: "gold=4"/],
    ['starter=1,pro=,enterprise=16', /FAIR_WEIGHTS: "pro="/],
  ])('refuses FAIR_WEIGHTS=%s, naming the variable', (value, message) => {
    expect(() => loadConfig({ ...services, FAIR_WEIGHTS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ...services, FAIR_WEIGHTS: value })).toThrow(message);
  });

  it('refuses a window below 1 ms and a negative per-customer cap', () => {
    expect(() => loadConfig({ ...services, FAIR_WINDOW_MS: '0' })).toThrow(/FAIR_WINDOW_MS/);
    expect(() => loadConfig({ ...services, FAIR_MAX_RELEASED_PER_CUSTOMER: '-1' })).toThrow(/FAIR_MAX_RELEASED_PER_CUSTOMER/);
    expect(() => loadConfig({ ...services, FAIR_BASE_COST_MS: '-1' })).toThrow(/FAIR_BASE_COST_MS/);
    expect(() => loadConfig({ ...services, FAIR_MAX_CHARGE_MS: '0' })).toThrow(/FAIR_MAX_CHARGE_MS/);
  });
});

describe('FAIR_MAX_RELEASED_PER_CUSTOMER over a type’s shards', () => {
  it('is split between the shards (16 shards had let one customer release 16 × the cap), 0 staying “no cap”', () => {
    expect(perShardCap(256, 1)).toBe(256);
    expect(perShardCap(256, 16)).toBe(16);
    expect(perShardCap(10, 16)).toBe(1);
    expect(perShardCap(0, 16)).toBe(0);
  });
});
