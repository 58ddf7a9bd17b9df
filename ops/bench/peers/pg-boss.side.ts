import PgBoss from 'pg-boss';
import { collectGarbage, startChild } from '../harness.js';
import { inChunks, type PeerSide } from './side.js';

/** What the bench sets in the pg-boss process; anything left out keeps pg-boss's own default. */
export interface PgBossSettings {
  /** Workers in the process (`work()` calls; pg-boss 10 dropped teamSize). */
  workers: number;
  /** Jobs each worker fetches, and its handler receives, at a time. */
  batchSize: number;
  /** Each worker's polling interval in seconds (pg-boss's default 2, its minimum 0.5). */
  pollingIntervalSeconds?: number;
  /** Connections in pg-boss's pool (its default 10). */
  max?: number;
}

export const queueName = 'invoke';
/** The channel the bench notifies after each chunk it enqueues; the pg-boss process wakes its workers on it. */
export const wakeChannel = 'bench_peer_jobs';

/** pg-boss in its own process (pg-boss.ts); the bench enqueues with `insert`, 1,000 jobs a call, each call followed by a NOTIFY. */
export function pgBossSide(settings: PgBossSettings): PeerSide {
  return {
    name: 'pg-boss',
    settings: { ...settings, notify: "notifyWorker on a full batch and on the bench's NOTIFY after each chunk" },
    async start(database) {
      const child = startChild(
        'ops/bench/peers/pg-boss.ts',
        { DATABASE_URL: database.workerUrl, BENCH_PEER_SETTINGS: JSON.stringify(settings) },
        'pg-boss',
      );
      await database.waitForWorker(child.process.pid);
      await collectGarbage(child.process.pid);
      // A producer only: the worker process migrated the schema, maintains it and keeps the clock.
      const boss = new PgBoss({ connectionString: database.url, max: 2, migrate: false, supervise: false, schedule: false });
      boss.on('error', () => undefined);
      await boss.start();
      return {
        pid: child.process.pid,
        enqueue: (jobs) =>
          inChunks(jobs, async (chunk) => {
            await boss.insert(chunk.map((data) => ({ name: queueName, data })));
            await boss.getDb().executeSql(`select pg_notify('${wakeChannel}', '')`, []);
          }),
        async stop() {
          await child.stop();
          await boss.stop({ graceful: false, wait: true });
        },
      };
    },
  };
}
