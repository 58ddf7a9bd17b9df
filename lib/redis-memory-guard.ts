import { dataNodes, type RedisClient } from './redis.js';

/** What one `INFO memory` sample said. */
export interface RedisMemorySample {
  usedBytes: number;
  /** Redis's `maxmemory`; when unset (0), the host's `total_system_memory`. 0 when neither is known. */
  limitBytes: number;
  /** Where the limit came from. */
  limitSource: 'maxmemory' | 'system' | 'none';
  at: number;
}

/**
 * Reads `used_memory`, `maxmemory` and `total_system_memory` from `INFO memory`. On a Redis Cluster every
 * master is read and the fullest one (highest share of its limit) answers: one full master stops the
 * queues whose slots it holds, whatever the others have left.
 */
export async function sampleRedisMemory(redis: RedisClient): Promise<RedisMemorySample> {
  const samples = await Promise.all((await dataNodes(redis)).map((node) => sampleNodeMemory(node)));
  if (samples.length === 0) throw new Error('no Redis master is known yet');
  const share = (sample: RedisMemorySample) => (sample.limitBytes > 0 ? sample.usedBytes / sample.limitBytes : 0);
  return samples.reduce((fullest, sample) => (share(sample) > share(fullest) ? sample : fullest));
}

async function sampleNodeMemory(node: RedisClient): Promise<RedisMemorySample> {
  const info = await node.info('memory');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  const maxmemory = field('maxmemory');
  const system = field('total_system_memory');
  return {
    usedBytes: field('used_memory'),
    limitBytes: maxmemory || system,
    limitSource: maxmemory ? 'maxmemory' : system ? 'system' : 'none',
    at: Date.now(),
  };
}

/**
 * The last line of defence for Redis memory (REDIS_MEMORY_GUARD): while Redis uses more than `share` of
 * its `maxmemory` (of the host's memory when Redis has no maxmemory), new work is refused. Redis runs
 * `noeviction`, so a full Redis would stop every tenant's queue; refusing new work lets running work drain.
 *
 * Sampled at most once per `sampleEveryMs` (default 1 s) per process, never on a request's path: `overLimit()`
 * answers from the last sample and starts the next one in the background when it is stale. A failed sample
 * keeps the previous answer (a Redis outage is answered elsewhere).
 */
export class RedisMemoryGuard {
  private sample: RedisMemorySample | null = null;
  private refreshing: Promise<void> | null = null;
  private readonly sampleEveryMs: number;

  constructor(
    private readonly redis: RedisClient,
    /** Share of the limit above which work is refused; 0 turns the guard off. */
    readonly share: number,
    options: { sampleEveryMs?: number } = {},
  ) {
    this.sampleEveryMs = options.sampleEveryMs ?? 1000;
  }

  /** The last sample when it is over the share (refuse new work), else null. Never waits for Redis. */
  overLimit(): RedisMemorySample | null {
    if (this.share <= 0) return null;
    if (!this.refreshing && (!this.sample || Date.now() - this.sample.at >= this.sampleEveryMs)) void this.refresh();
    const sample = this.sample;
    if (!sample || sample.limitBytes <= 0) return null;
    return sample.usedBytes > sample.limitBytes * this.share ? sample : null;
  }

  /** Takes a sample now (at most one at a time); resolves when it is in. */
  refresh(): Promise<void> {
    this.refreshing ??= sampleRedisMemory(this.redis)
      .then((sample) => {
        this.sample = sample;
      })
      .catch(() => undefined)
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }
}
