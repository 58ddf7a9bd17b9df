/**
 * The raw baseline every ratio refers to: the existing BullMQ + Piscina + batched-insert program
 * (ops/bench/baseline/raw-worker.ts, mode persist), here writing into its own database with the same
 * synchronous_commit as the other sides.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { collectGarbage, startChild, waitUntil } from '../harness.js';
import { inChunks, type PeerSide } from './side.js';

export function rawSide(options: { redisUrl: string; queuePrefix: string }): PeerSide {
  const queueName = 'bench-peers-raw';
  const settings = { worker_concurrency: 64, insert_batch: '200 rows or 5 ms', enqueue: 'addBulk per 1,000' };
  return {
    name: 'raw',
    settings,
    async start(database) {
      const child = startChild(
        'ops/bench/baseline/raw-worker.ts',
        {
          DATABASE_URL: database.workerUrl,
          REDIS_URL: options.redisUrl,
          BENCH_QUEUE: queueName,
          BENCH_PREFIX: options.queuePrefix,
          BENCH_MODE: 'persist',
        },
        'raw worker',
      );
      const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
      const queue = new Queue(queueName, { connection, prefix: options.queuePrefix });
      await waitUntil(async () => (await queue.getWorkers()).length > 0, 60_000, 50);
      await collectGarbage(child.process.pid);
      return {
        pid: child.process.pid,
        enqueue: (jobs) => inChunks(jobs, (chunk) => queue.addBulk(chunk.map((data) => ({ name: 'invoke', data })))),
        async stop() {
          await child.stop();
          await queue.obliterate({ force: true });
          await queue.close();
          connection.disconnect();
        },
      };
    },
  };
}
