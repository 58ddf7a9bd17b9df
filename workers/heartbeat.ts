import { hostname } from 'node:os';
import type { RedisClient } from '../lib/redis.js';
import type { Logger } from 'pino';
import { heartbeatIndexKey, heartbeatIntervalMs, heartbeatKey, heartbeatTtlMs, type WorkerHeartbeat } from '../queue/worker-heartbeats.js';
import type { JobLifecycleHook } from './lifecycle.js';

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
    private readonly redis: RedisClient,
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
