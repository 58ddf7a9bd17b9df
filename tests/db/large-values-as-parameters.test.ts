import { randomUUID } from 'node:crypto';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { insertJob, insertJobsAllOrNothing, insertJobsBulk, type JobInsert } from '../../db/jobs/insert-jobs.js';
import { createOrm, type Orm } from '../../db/orm.js';
import { insertBatchItems } from '../../db/repositories/batches.js';
import { insertRequestLogs } from '../../db/repositories/request-logs.js';
import { upsertSubstrates } from '../../db/repositories/substrate-store.js';
import { insertDeliveries } from '../../db/repositories/webhook-deliveries.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

/**
 * Large values (job payloads, request-log batches, webhook payloads, batch results) must reach PostgreSQL as
 * statement parameters, not escaped into the SQL text on the event loop: MikroORM's `execute` inlines them,
 * which froze the API for seconds on a 16 MB bulk submit. knex reports each statement's text as sent.
 */
let app: TestApp;
let orm: Orm;
let customerId: string;
const statements: string[] = [];
const maxStatementChars = 20_000;
// About 1 MB of JSON per value, quotes and backslashes included (escaping doubles those).
const blob = 'a"b\\c'.repeat(200_000);

beforeAll(async () => {
  app = await startTestApp();
  orm = await createOrm(app.config.databaseUrl, { poolMax: 4 });
  orm.em
    .getConnection('write')
    .getKnex()
    .on('query', (query: { sql: string }) => statements.push(query.sql));
  customerId = randomUUID();
  await app.sql(`insert into customers (id, name) values ($1, 'large-values')`, [customerId]);
});

afterAll(async () => {
  await orm?.close();
  await app?.close();
});

beforeEach(() => {
  statements.length = 0;
});

function expectShortStatements() {
  expect(statements.length).toBeGreaterThan(0);
  expect(Math.max(...statements.map((sql) => sql.length))).toBeLessThan(maxStatementChars);
}

const newJob = (idempotencyKey: string | null): JobInsert['row'] => ({
  id: uuidv7(),
  customerId,
  type: 'echo',
  state: 'queued',
  payload: { blob },
  maxAttempts: 3,
  priority: 0,
  delayMs: 0,
  webhookUrl: null,
  idempotencyKey,
  requestHash: idempotencyKey ? 'hash' : null,
  scheduleName: null,
  retryOf: null,
});

async function storedPayload(id: string): Promise<unknown> {
  const [row] = await app.sql<{ payload: unknown }>('select payload from jobs where id = $1', [id]);
  return row?.payload;
}

describe('large values go as statement parameters', () => {
  it('a bulk submit without keys (insertJobsBulk)', async () => {
    const jobs = [
      { id: uuidv7(), payload: { blob } },
      { id: uuidv7(), payload: { blob, n: 2 } },
    ];
    await insertJobsBulk(orm.em.fork(), customerId, 'echo', 3, jobs);
    expectShortStatements();
    expect(await storedPayload(jobs[1]!.id)).toEqual({ blob, n: 2 });
  });

  it('an all-or-nothing bulk submit with keys (insertJobsAllOrNothing), replays included', async () => {
    const rows = [newJob('k-1'), newJob('k-2')];
    const first = await insertJobsAllOrNothing(
      orm.em.fork(),
      rows.map((row) => ({ row })),
      86_400_000,
    );
    expect(first.kind).toBe('inserted');
    const replay = await insertJobsAllOrNothing(orm.em.fork(), [{ row: { ...newJob('k-1') } }], 86_400_000);
    expect(replay).toMatchObject({ kind: 'inserted', jobs: [{ replayed: true, job: { id: rows[0]!.id } }] });
    expectShortStatements();
    expect(await storedPayload(rows[0]!.id)).toEqual({ blob });
  });

  it('a single submit (insertJob)', async () => {
    const row = newJob(null);
    const stored = await insertJob(orm.em.fork(), row);
    expect(stored?.id).toBe(row.id);
    expectShortStatements();
    expect(await storedPayload(row.id)).toEqual({ blob });
  });

  it('a request-log flush (insertRequestLogs)', async () => {
    const logs = Array.from({ length: 12_000 }, () => ({
      timestamp: new Date(),
      customerId,
      serviceType: 'compute',
      method: 'POST',
      statusCode: 200,
      bytesOut: 10,
    }));
    expect(await insertRequestLogs(orm.em.fork(), logs)).toBe(12_000);
    expectShortStatements();
    const [row] = await app.sql<{ n: number }>('select count(*)::int as n from request_logs where customer_id = $1', [customerId]);
    expect(row?.n).toBe(12_000);
  });

  it('webhook deliveries (insertDeliveries)', async () => {
    const job = newJob(null);
    await insertJob(orm.em.fork(), job);
    statements.length = 0;
    const id = uuidv7();
    const ids = await insertDeliveries(orm.em.fork(), [
      {
        id,
        customerId,
        endpointId: null,
        jobId: job.id,
        url: 'http://127.0.0.1:9/hook',
        eventType: 'job.completed',
        payload: { blob },
        messageId: `msg_${id}`,
        dedupeKey: `dedupe-${id}`,
      },
    ]);
    expect(ids).toEqual([id]);
    expectShortStatements();
    const [row] = await app.sql<{ payload: unknown }>('select payload from webhook_deliveries where id = $1', [id]);
    expect(row?.payload).toEqual({ blob });
  });

  it('batch items and substrates (insertBatchItems, upsertSubstrates)', async () => {
    const substrateId = `sub-${randomUUID()}`;
    const substrates = await upsertSubstrates(
      orm.em.fork(),
      [{ id: substrateId, customerId, identity: 'i', expressionType: 'constant', expression: null, value: 1, metadata: { blob } }],
      10,
    );
    const [substrate] = Array.isArray(substrates) ? substrates : [];
    expect(substrate?.created).toBe(true);
    const batch = newJob(null);
    await insertJob(orm.em.fork(), batch);
    statements.length = 0;
    const batchId = batch.id;
    await insertBatchItems(orm.em.fork(), batchId, [{ index: 0, substrateId, state: 'completed', result: { blob }, error: null }]);
    expectShortStatements();
    const [row] = await app.sql<{ result: unknown }>('select result from batch_items where batch_id = $1', [batchId]);
    expect(row?.result).toEqual({ blob });
  });
});
