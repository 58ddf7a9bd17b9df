import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findJob } from '../../db/jobs/find-jobs.js';
import { createOrm, type Orm } from '../../db/orm.js';
import { defineJob } from '../../jobs/define-job.js';
import { defineTask } from '../../jobs/define-task.js';
import { withJobTypes } from '../../jobs/registry.js';
import { createRedis } from '../../lib/redis.js';
import { createQueues, type JobQueues } from '../../queue/queues.js';
import { platformSchedules } from '../../queue/schedules/platform-schedules.js';
import { submitJob } from '../../queue/submit-job.js';
import { runWorkers, type RunningWorkers } from '../../workers/run-workers.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { shoutJob, shouted } from './custom-job-type/shout.job.js';

/** The production registry plus the test job type: its one registry line. */
const registry = withJobTypes(shoutJob);

const suite = useTestApp();
let orm: Orm;
let workers: RunningWorkers;
let queues: JobQueues;
const connection = () => createRedis(suite.app.config.redis, 'blocking');
let queueConnection: ReturnType<typeof connection>;

beforeAll(async () => {
  orm = await createOrm(suite.app.config.databaseUrl);
  workers = await runWorkers({ config: suite.app.config, orm, logger: suite.app.deps.logger, registry });
  queueConnection = connection();
  queues = createQueues(queueConnection, suite.app.config, registry);
});

afterAll(async () => {
  await workers?.close();
  await queues.close();
  await queueConnection?.quit();
  await orm?.close();
});

describe('a job type with a task of its own is its folder plus one registry line', () => {
  it('runs end to end through a worker: row first, its own task in a Piscina thread, its own hook', async () => {
    const customerId = randomUUID();
    const outcome = await submitJob(
      { em: orm.em, queues, logger: suite.app.deps.logger, fair: null },
      { customerId, definition: shoutJob, payload: { text: 'hello' } },
    );
    expect(outcome.kind).toBe('created');
    const id = outcome.kind === 'created' ? outcome.job.id : '';

    const job = await waitFor(async () => {
      const row = await findJob(orm.em.fork(), customerId, id);
      return row?.state === 'completed' || row?.state === 'failed' ? row : null;
    }, 20_000);
    expect(job.error).toBeNull();
    expect(job.result).toEqual({ text: 'HELLO!', threadId: expect.any(Number) });
    // Thread 0 is the main thread: the task ran in the pool's worker thread, loaded from its own file.
    expect((job.result as { threadId: number }).threadId).toBeGreaterThan(0);
    await waitFor(async () => shouted.includes('HELLO!'));
  });

  it('gets a platform schedule from its declaration', () => {
    expect(platformSchedules(suite.app.config, registry)).toContainEqual({
      id: 'platform:shout',
      type: 'shout',
      repeat: { every: 3_600_000 },
    });
    expect(platformSchedules(suite.app.config).map((schedule) => schedule.type)).toEqual([
      'metering',
      'billing',
      'vault-export',
      'month-rollover',
      'retention',
    ]);
  });

  it('refuses at start-up a second task under a name another job type declared', () => {
    const impostor = defineJob({
      name: 'impostor',
      description: 'Declares a task named like invoke’s.',
      payload: shoutJob.payload,
      result: shoutJob.result,
      tasks: [defineTask({ name: 'evaluate', module: import.meta.url, file: './custom-job-type/shout.task' })],
      process: async () => ({ text: '', threadId: 0 }),
    });
    expect(() => withJobTypes(impostor)).toThrow('task "evaluate" is declared twice');
  });
});
