import { describe, expect, it } from 'vitest';
import { uuidv7 } from 'uuidv7';
import { ConfigError, loadConfig } from '../../config.js';
import { queueName, shardOf } from '../../queue/queue-names.js';
import { shardConcurrency } from '../../workers/run-workers.js';

const services = { DATABASE_URL: 'postgresql://127.0.0.1:5432/unused', REDIS_URL: 'redis://127.0.0.1:6379', DATA_DIR: '.data/test' };

describe('queue names', () => {
  it('gives each shard of a sharded type, and each other queue, its own hash tag', () => {
    expect(queueName('invoke', 3)).toBe('{invoke.3}');
    expect(queueName('metering', null)).toBe('{metering}');
    expect(queueName('vault-export', null)).toBe('{vault-export}');
  });
});

describe('shardOf', () => {
  it('names the same shard for the same id every time, within range', () => {
    const id = uuidv7();
    const shard = shardOf(id, 16);
    expect(shard).toBeGreaterThanOrEqual(0);
    expect(shard).toBeLessThan(16);
    expect(shardOf(id, 16)).toBe(shard);
    expect(shardOf(id.toUpperCase(), 16)).toBe(shard);
    // A known id pins the function (CRC-32 of the last 16 hex digits): changing it would strand queued jobs
    // on shards nobody looks them up on, so a change must fail here first.
    expect(shardOf('0192a6f0-3c1e-7b2a-9f00-1234567890ab', 16)).toBe(11);
  });

  it('puts everything on shard 0 when there is one shard', () => {
    expect(shardOf(uuidv7(), 1)).toBe(0);
  });

  it('spreads ids generated in one burst evenly over 16 shards', () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 10_000; i++) counts[shardOf(uuidv7(), 16)]! += 1;
    // 625 expected per shard; a binomial standard deviation is ~24, so ±20 % is five of them.
    for (const count of counts) {
      expect(count).toBeGreaterThan(500);
      expect(count).toBeLessThan(750);
    }
  });
});

describe('shard concurrency', () => {
  it("divides a type's concurrency over its shards, at least 2 each", () => {
    expect(shardConcurrency(64, 16)).toBe(4);
    expect(shardConcurrency(64, 1)).toBe(64);
    expect(shardConcurrency(4, 16)).toBe(2);
    expect(shardConcurrency(100, 16)).toBe(7);
  });
});

describe('QUEUE_PREFIX and QUEUE_SHARDS', () => {
  it('defaults to the plain prefix chrysalis and 16 shards', () => {
    const config = loadConfig({ ...services, NODE_ENV: 'test' });
    expect(config.queuePrefix).toBe('chrysalis');
    expect(config.queueShards).toBe(1);
  });

  it('refuses a prefix with a hash tag, naming the variable and why', () => {
    expect(() => loadConfig({ ...services, NODE_ENV: 'test', QUEUE_PREFIX: '{chrysalis}' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...services, NODE_ENV: 'test', QUEUE_PREFIX: '{chrysalis}' })).toThrow(
      /QUEUE_PREFIX: must be plain: no braces/,
    );
    expect(() => loadConfig({ ...services, NODE_ENV: 'test', QUEUE_PREFIX: 'a}b' })).toThrow(/QUEUE_PREFIX/);
  });

  it('accepts one shard and refuses zero or a fraction', () => {
    expect(loadConfig({ ...services, NODE_ENV: 'test', QUEUE_SHARDS: '1' }).queueShards).toBe(1);
    expect(() => loadConfig({ ...services, NODE_ENV: 'test', QUEUE_SHARDS: '0' })).toThrow(/QUEUE_SHARDS/);
    expect(() => loadConfig({ ...services, NODE_ENV: 'test', QUEUE_SHARDS: '2.5' })).toThrow(/QUEUE_SHARDS/);
  });
});

describe('JOB_BUNDLE_SIZE', () => {
  it('defaults to 50, takes 1 (every job alone) to 500, and refuses anything else by name', () => {
    expect(loadConfig({ ...services, NODE_ENV: 'test' }).jobBundleSize).toBe(100);
    expect(loadConfig({ ...services, NODE_ENV: 'test', JOB_BUNDLE_SIZE: '1' }).jobBundleSize).toBe(1);
    expect(loadConfig({ ...services, NODE_ENV: 'test', JOB_BUNDLE_SIZE: '500' }).jobBundleSize).toBe(500);
    for (const bad of ['0', '501', '2.5', 'many', '-3'])
      expect(() => loadConfig({ ...services, NODE_ENV: 'test', JOB_BUNDLE_SIZE: bad })).toThrow(/JOB_BUNDLE_SIZE/);
  });
});
