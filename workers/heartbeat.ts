import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { JobLifecycleHook } from './lifecycle.js';

/** How often a worker process announces itself. */
export const heartbeatIntervalMs = 5000;
/** A heartbeat older than this (three missed beats) means the process is gone or its event loop is stuck. */
export const heartbeatTtlMs = 15_000;

/** What a worker process writes every beat. Times are epoch milliseconds. */
export interface WorkerHeartbeat {
  /** `<hostname>-<pid>`. */
  id: string;
  at: number;
  /** When this process last started or finished a job; null before its first job. */
  lastProgressAt: number | null;
}

/** `${prefix}:workers:heartbeat:<hostname-pid>`, expiring after heartbeatTtlMs. */
export const heartbeatKey = (prefix: string, id: string): string => `${prefix}:workers:heartbeat:${id}`;
/** Sorted set of worker ids scored by their last beat, so readers find heartbeats without SCAN. */
const heartbeatIndexKey = (prefix: string): string => `${prefix}:workers:heartbeats`;

/**
 * Writes this process's heartbeat every 5 s from the same event loop that runs the BullMQ workers: a
 * process that died or whose loop is blocked (CPU-bound work on the main thread) stops beating, and its
 * key expires 15 s later. A process whose loop runs but which no longer takes jobs still beats; its
 * `lastProgressAt` gives it away (see api/worker-readiness.ts).
 */
export class HeartbeatPublisher implements JobLifecycleHook {
  readonly name = 'heartbeat';
  readonly id = `${hostname()}-${process.pid}`;
  private lastProgressAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  started(): void {
    this.lastProgressAt = Date.now();
  }

  finished(): void {
    this.lastProgressAt = Date.now();
  }

  /** Beats now and every heartbeatIntervalMs until `stop()`. */
  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), heartbeatIntervalMs);
    this.timer.unref();
  }

  /** Stops beating and withdraws the heartbeat, so /ready stops counting a process that is leaving. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis
      .multi()
      .del(heartbeatKey(this.prefix, this.id))
      .zrem(heartbeatIndexKey(this.prefix), this.id)
      .exec()
      .catch((error: unknown) => this.logger.warn({ err: error }, 'could not withdraw the worker heartbeat'));
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    const beat: WorkerHeartbeat = { id: this.id, at: now, lastProgressAt: this.lastProgressAt };
    try {
      await this.redis
        .multi()
        .set(heartbeatKey(this.prefix, this.id), JSON.stringify(beat), 'PX', heartbeatTtlMs)
        .zadd(heartbeatIndexKey(this.prefix), now, this.id)
        .zremrangebyscore(heartbeatIndexKey(this.prefix), '-inf', now - heartbeatTtlMs)
        .exec();
    } catch (error) {
      this.logger.warn({ err: error }, 'worker heartbeat failed');
    }
  }
}

/** Heartbeats of worker processes that beat within the last heartbeatTtlMs. */
export async function liveWorkers(redis: Redis, prefix: string, now = Date.now()): Promise<WorkerHeartbeat[]> {
  const ids = await redis.zrangebyscore(heartbeatIndexKey(prefix), now - heartbeatTtlMs, '+inf');
  if (ids.length === 0) return [];
  const values = await redis.mget(...ids.map((id) => heartbeatKey(prefix, id)));
  return values.filter((value): value is string => value !== null).map((value) => JSON.parse(value) as WorkerHeartbeat);
}
