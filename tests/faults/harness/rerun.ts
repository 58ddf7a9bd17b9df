import { Queue } from 'bullmq';
import { waitFor } from '../../helpers/http.js';
import type { FaultStack } from './fault-stack.js';

/**
 * GitLab's "run every job twice": takes finished jobs out of BullMQ and adds them again under the same
 * id with the same data — exactly what a sweeper that misjudged, a retried enqueue or an operator's
 * Retry would do — and waits until each has run a second time. The platform must run them again
 * without writing any effect twice.
 */
export async function runEveryJobAgain(stack: FaultStack, jobs: Array<{ id: string; type: string }>, timeoutMs: number): Promise<void> {
  const queues = new Map<string, Queue>();
  // Each job's own shard (queue names carry the shard: `{invoke.3}`).
  const queueFor = (type: string, id: string) => {
    const name = stack.queueOf(type, id);
    let queue = queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: { url: stack.redis.url, maxRetriesPerRequest: null }, prefix: stack.prefix });
      queues.set(name, queue);
    }
    return queue;
  };
  try {
    for (const { id, type } of jobs) {
      const queue = queueFor(type, id);
      const job = await queue.getJob(id);
      if (!job) throw new Error(`job ${id} is not in BullMQ`);
      const { data, opts } = job;
      await job.remove();
      await queue.add(type, data, { jobId: id, attempts: opts.attempts, backoff: opts.backoff });
    }
    await waitFor(
      async () => {
        for (const { id, type } of jobs) {
          const state = await queueFor(type, id).getJobState(id);
          if (state !== 'completed' && state !== 'failed') return false;
        }
        return true;
      },
      timeoutMs,
      250,
    );
  } finally {
    await Promise.all([...queues.values()].map((queue) => queue.close()));
  }
}
