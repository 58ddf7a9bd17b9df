import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { writeHandedBackStates } from '../../db/jobs/job-states.js';
import { uuidv7 } from '../../lib/uuid.js';
import { useTestApp } from '../helpers/suite.js';

const suite = useTestApp();

interface Row {
  state: string;
  attempts_made: number;
  started: boolean;
  progress: unknown;
}

/** A job row as a worker left it: `state`, `attempts` made, started and with progress unless queued. */
async function insertJob(state: string, attempts: number): Promise<string> {
  const id = uuidv7();
  await suite.app.sql(
    `insert into jobs (id, customer_id, type, state, payload, attempts_made, max_attempts, started_at, progress)
     values ($1, $2, 'invoke', $3, '{}', $4, 3, case when $3 = 'queued' then null else now() end,
             case when $3 = 'queued' then null else '{"step": 1}'::jsonb end)`,
    [id, randomUUID(), state, attempts],
  );
  return id;
}

async function rowOf(id: string): Promise<Row> {
  const [row] = await suite.app.sql<Row>(
    `select state, attempts_made, started_at is not null as started, progress from jobs where id = $1`,
    [id],
  );
  return row!;
}

describe('rows of attempts handed back at shutdown', () => {
  it('read as before the attempt: a first attempt as a job that never ran, a later one as a job waiting for its retry', async () => {
    const first = await insertJob('active', 1);
    const third = await insertJob('active', 3);
    await writeHandedBackStates(
      suite.app.deps.orm.em.fork(),
      new Map([
        [first, 1],
        [third, 3],
      ]),
    );
    expect(await rowOf(first)).toEqual({ state: 'queued', attempts_made: 0, started: false, progress: null });
    expect(await rowOf(third)).toEqual({ state: 'queued', attempts_made: 2, started: true, progress: { step: 1 } });
  });

  it('leave every row not active for that attempt as it is: an outcome stored meanwhile, or another attempt', async () => {
    const completed = await insertJob('completed', 1);
    const failed = await insertJob('failed', 1);
    const cancelled = await insertJob('cancelled', 1);
    const laterAttempt = await insertJob('active', 2);
    const before = await Promise.all([completed, failed, cancelled, laterAttempt].map(rowOf));
    await writeHandedBackStates(
      suite.app.deps.orm.em.fork(),
      new Map([
        [completed, 1],
        [failed, 1],
        [cancelled, 1],
        [laterAttempt, 1],
      ]),
    );
    expect(await Promise.all([completed, failed, cancelled, laterAttempt].map(rowOf))).toEqual(before);
  });
});
