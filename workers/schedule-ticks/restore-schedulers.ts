import type { MikroORM } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../../lib/redis.js';
import type { Logger } from 'pino';
import { listActiveSchedules } from '../../db/repositories/schedules.js';
import type { JobQueues } from '../../queue/queues.js';
import { schedulerMatches, upsertScheduler } from '../../queue/schedules/user-schedulers.js';
import type { ScheduleTickQueue } from '../../queue/schedules/tick-queue.js';

export interface RestoreReport {
  /** Schedules that are not paused. */
  checked: number;
  /** Of those, the ones Redis did not hold (or held with other timing), now upserted. */
  restored: number;
  /** False when another process was restoring at the same time (this one left it to that one). */
  ran: boolean;
}

/** Schedules read per round trip. */
const pageSize = 500;

/**
 * Set once the schedules are in Redis. Redis runs `noeviction`, so this key goes only with the rest of the
 * data (a restart without persistence, a failover to an empty replica): its absence says to restore them.
 */
export const schedulesRestoredKey = (prefix: string): string => `${prefix}:schedules:restored`;

/**
 * Schedules live in PostgreSQL; Redis holds only their clocks. A worker starting up writes every schedule
 * that is not paused into Redis, so a Redis that lost them (restarted empty, failed over) gets them back.
 * A scheduler Redis still holds with the same timing is left alone — upserting an `every` scheduler whose
 * tick is due or running could fire it an extra time — and a missing or different one is upserted (an
 * `every` one then fires an interval after its last run, at once if that has passed: `lastRunAt`). One process at a time, under a Redis lock;
 * another starting meanwhile leaves it to the first.
 */
export async function restoreSchedulers(deps: {
  orm: MikroORM;
  redis: RedisClient;
  ticks: ScheduleTickQueue;
  prefix: string;
  logger: Logger;
}): Promise<RestoreReport> {
  const lock = `${deps.prefix}:schedules:restore-lock`;
  const owner = randomUUID();
  if ((await deps.redis.set(lock, owner, 'PX', 120_000, 'NX')) !== 'OK') return { checked: 0, restored: 0, ran: false };
  try {
    const em = deps.orm.em.fork();
    const report: RestoreReport = { checked: 0, restored: 0, ran: true };
    let afterId: string | null = null;
    for (;;) {
      const page = await listActiveSchedules(em, afterId, pageSize);
      if (page.length === 0) break;
      afterId = page.at(-1)!.id;
      report.checked += page.length;
      const restored = await Promise.all(
        page.map(async (schedule) => {
          if (await schedulerMatches(deps.ticks, schedule)) return false;
          await upsertScheduler(deps.ticks, schedule);
          return true;
        }),
      );
      report.restored += restored.filter(Boolean).length;
    }
    await deps.redis.set(schedulesRestoredKey(deps.prefix), new Date().toISOString());
    if (report.restored > 0) deps.logger.warn(report, 'schedules missing from Redis were written back from PostgreSQL');
    return report;
  } finally {
    await deps.redis.eval(`if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`, 1, lock, owner);
  }
}

/**
 * Earlier versions kept schedulers on the job types' own queues, whose ticks were jobs with no row;
 * their schedules are restored on the tick queue, so those go (and with them their pending jobs).
 */
export async function removeJobQueueSchedulers(queues: JobQueues): Promise<number> {
  let removed = 0;
  for (const queue of queues.all()) {
    for (const scheduler of await queue.getJobSchedulers()) {
      await queue.removeJobScheduler(scheduler.key);
      removed += 1;
    }
  }
  return removed;
}
