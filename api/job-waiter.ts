import { QueueEvents } from 'bullmq';
import { EventEmitter } from 'node:events';
import { jobRegistry } from '../jobs/registry.js';

export type JobEvent =
  | { jobId: string; event: 'active' | 'waiting' | 'delayed' | 'completed' | 'failed' | 'removed' }
  | { jobId: string; event: 'progress'; data: unknown };

/** Not a job id (a symbol can never collide with one): emitted when the waiter closes. */
const closing = Symbol('closing');

/**
 * Job events from BullMQ's Redis streams (QueueEvents), so any API process hears about jobs that any
 * worker runs. `Prefer: wait` and the SSE stream both listen here; the PostgreSQL row stays the truth.
 */
export class JobWaiter {
  private readonly emitter = new EventEmitter();
  private readonly queueEvents: QueueEvents[];

  constructor(redisUrl: string, prefix: string) {
    this.emitter.setMaxListeners(0);
    this.queueEvents = [...jobRegistry.keys()].map((name) => {
      const events = new QueueEvents(name, { connection: { url: redisUrl, maxRetriesPerRequest: null }, prefix });
      for (const event of ['active', 'waiting', 'delayed', 'completed', 'failed', 'removed'] as const) {
        events.on(event, ({ jobId }: { jobId: string }) => this.emitter.emit(jobId, { jobId, event }));
      }
      events.on('progress', ({ jobId, data }) => this.emitter.emit(jobId, { jobId, event: 'progress', data }));
      events.on('error', () => undefined);
      return events;
    });
  }

  async ready(): Promise<void> {
    await Promise.all(this.queueEvents.map((events) => events.waitUntilReady()));
  }

  /** Calls `listener` for each event of this job until the returned function is called. */
  subscribe(jobId: string, listener: (event: JobEvent) => void): () => void {
    this.emitter.on(jobId, listener);
    return () => this.emitter.off(jobId, listener);
  }

  /** Calls `listener` once when the waiter closes (the process is shutting down), so open streams can end. */
  onClose(listener: () => void): () => void {
    this.emitter.once(closing, listener);
    return () => this.emitter.off(closing, listener);
  }

  /** How many subscribers this job has in this process (tests check that streams clean up). */
  listenerCount(jobId: string): number {
    return this.emitter.listenerCount(jobId);
  }

  /**
   * Resolves when `isFinal()` says so (checked now and after each event of the job) or after `timeoutMs`.
   * Returns whether the job finished.
   */
  async waitUntil(jobId: string, timeoutMs: number, isFinal: () => Promise<boolean>): Promise<boolean> {
    let wake: () => void = () => undefined;
    const unsubscribe = this.subscribe(jobId, (event) => {
      if (event.event === 'completed' || event.event === 'failed' || event.event === 'removed') wake();
    });
    const deadline = Date.now() + timeoutMs;
    try {
      while (true) {
        const woken = new Promise<void>((resolve) => (wake = resolve));
        if (await isFinal()) return true;
        const remaining = deadline - Date.now();
        if (remaining <= 0) return false;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([woken, new Promise<void>((resolve) => (timer = setTimeout(resolve, remaining)))]);
        clearTimeout(timer);
      }
    } finally {
      unsubscribe();
    }
  }

  async close(): Promise<void> {
    this.emitter.emit(closing);
    await Promise.all(this.queueEvents.map((events) => events.close()));
  }
}
