import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { insertJobs, type JobInsert } from '../../db/jobs/insert-jobs.js';
import { uuidv7 } from '../../lib/uuid.js';
import type { TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

/**
 * Overlapping `POST /jobs/bulk`s of one customer whose jobs carry the same idempotency keys in different
 * orders: each takes its keys in one transaction, so taken in request order two of them could wait on each
 * other in a cycle (PostgreSQL 40P01 "deadlock detected", answered 500). Every request must be accepted, and
 * each key name one job, the same in every answer.
 */
const suite = useTestApp({ users: 1 });
let alice: TestUser;
let substrateId: string;
let customerId: string;

beforeAll(async () => {
  alice = suite.users[0] as TestUser;
  substrateId = await createExpressionSubstrate(suite.request, alice.accessToken, 'x + y');
  customerId = (await suite.request('GET', '/api/v1/auth/me', { token: alice.accessToken })).body.customer_id;
});

/** A deterministic shuffle (a small LCG), so a failure can be replayed. */
function shuffled<T>(items: T[], seed: number): T[] {
  const copy = [...items];
  let state = seed;
  for (let i = copy.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const j = state % (i + 1);
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

/** Each round takes about a second; one round of the unfixed code deadlocked about a third of the time. */
const rounds = 10;
const requests = 6;
const jobsPerRequest = 300;
/** Request r takes keys r·stride … r·stride + 299: each overlaps its neighbours by 240 keys. */
const stride = 60;

describe('concurrent bulk submits sharing idempotency keys', () => {
  it('accepts every request with 202, and each key names one job, the same in every answer', { timeout: 90_000 }, async () => {
    for (let round = 0; round < rounds; round++) {
      const key = (i: number) => `order-${round}-${i}`;
      const job = (i: number) => ({
        type: 'invoke',
        payload: { substrate_id: substrateId, parameters: { x: i, y: round } },
        idempotency_key: key(i),
      });
      const lists = Array.from({ length: requests }, (_, r) => {
        const indexes = Array.from({ length: jobsPerRequest }, (_, i) => r * stride + i);
        const ordered = r % 3 === 0 ? indexes : r % 3 === 1 ? indexes.reverse() : shuffled(indexes, round * 31 + r + 1);
        return ordered;
      });
      const answers = await Promise.all(
        lists.map((indexes) => suite.request('POST', '/api/v1/jobs/bulk', { token: alice.accessToken, body: { jobs: indexes.map(job) } })),
      );
      expect(
        answers.map((answer) => answer.status),
        answers.map((answer) => answer.text.slice(0, 300)).join('\n'),
      ).toEqual(Array(requests).fill(202));

      const jobOfKey = new Map<string, string>();
      answers.forEach((answer, r) => {
        const items = answer.body.items as Array<{ id: string }>;
        expect(items).toHaveLength(jobsPerRequest);
        // Answers come in request order: item i is the job of the request's i-th key.
        items.forEach((item, i) => {
          const named = key(lists[r]![i]!);
          const seen = jobOfKey.get(named);
          if (seen === undefined) jobOfKey.set(named, item.id);
          else expect(item.id, `job of ${named}`).toBe(seen);
        });
      });
      const distinctKeys = (requests - 1) * stride + jobsPerRequest;
      expect(jobOfKey.size).toBe(distinctKeys);
      expect(new Set(jobOfKey.values()).size).toBe(distinctKeys);

      const keyRows = await suite.app.sql<{ idempotency_key: string; job_id: string }>(
        `select idempotency_key, job_id from job_idempotency_keys where customer_id = $1 and idempotency_key like $2`,
        [customerId, `order-${round}-%`],
      );
      expect(keyRows).toHaveLength(distinctKeys);
      for (const row of keyRows) expect(row.job_id).toBe(jobOfKey.get(row.idempotency_key));
      const jobRows = await suite.app.sql<{ idempotency_key: string; n: string }>(
        `select idempotency_key, count(*) as n from jobs where customer_id = $1 and idempotency_key like $2 group by idempotency_key`,
        [customerId, `order-${round}-%`],
      );
      expect(jobRows).toHaveLength(distinctKeys);
      expect(jobRows.every((row) => row.n === '1')).toBe(true);
    }
  });

  /**
   * Runs `work` (which takes keys `<prefix>-a` then `<prefix>-b`) into a deadlock: another transaction holds key b
   * and then wants key a, which `work` took (in key order, a first) before it waited for b — a cycle no order of
   * `work`'s can avoid. PostgreSQL ends `work`'s transaction (it waited first, so it finds the deadlock); the other
   * transaction then rolls back, so `work`, taking its keys again, finds them free.
   */
  async function inDeadlock<T>(prefix: string, work: () => Promise<T>): Promise<T> {
    const other = new pg.Client({ connectionString: suite.app.config.databaseUrl });
    await other.connect();
    // The side that checks for the deadlock first is the one PostgreSQL ends. `work` waits first, but under load the
    // two checks could come close enough for this side's to run first (CI saw this transaction ended): it now waits
    // 10 s before checking, so `work`'s check (1 s) always comes first.
    await other.query(`set deadlock_timeout = '10s'`);
    try {
      const take = (key: string) =>
        other.query(`insert into job_idempotency_keys (customer_id, idempotency_key, job_id) values ($1, $2, $3)`, [
          customerId,
          key,
          randomUUID(),
        ]);
      await other.query('begin');
      await take(`${prefix}-b`);
      const done = work();
      done.catch(() => undefined);
      await waitFor(
        async () =>
          (
            await suite.app.sql(
              `select 1 from pg_stat_activity
                where datname = current_database() and wait_event_type = 'Lock' and query like '%job_idempotency_keys%' and pid <> $1`,
              [(other as unknown as { processID: number }).processID],
            )
          ).length > 0,
      );
      // Resolves once PostgreSQL has rolled `work` back (so `work`, not this transaction, was the victim).
      await take(`${prefix}-a`);
      await other.query('rollback');
      return await done;
    } finally {
      await other.query('rollback').catch(() => undefined);
      await other.end();
    }
  }

  const keysOf = async (prefix: string) =>
    suite.app.sql<{ idempotency_key: string; job_id: string }>(
      `select idempotency_key, job_id from job_idempotency_keys where customer_id = $1 and idempotency_key like $2 order by 1`,
      [customerId, `${prefix}-%`],
    );

  it('runs a bulk submit again when PostgreSQL ends it to break a deadlock with another writer', { timeout: 30_000 }, async () => {
    const job = (key: string, x: number) => ({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x, y: 0 } },
      idempotency_key: key,
    });
    const accepted = await inDeadlock('cycle', () =>
      suite.request('POST', '/api/v1/jobs/bulk', { token: alice.accessToken, body: { jobs: [job('cycle-a', 1), job('cycle-b', 2)] } }),
    );
    expect(accepted.status, accepted.text).toBe(202);
    const ids = (accepted.body.items as Array<{ id: string }>).map((item) => item.id);
    expect(await keysOf('cycle')).toEqual([
      { idempotency_key: 'cycle-a', job_id: ids[0] },
      { idempotency_key: 'cycle-b', job_id: ids[1] },
    ]);
    const jobs = await suite.app.sql<{ n: string }>(`select count(*) as n from jobs where id = any($1::uuid[])`, [ids]);
    expect(jobs[0]!.n).toBe('2');
  });

  it(
    "runs single submits' shared insert (a GroupCommit's) again when PostgreSQL ends it to break a deadlock",
    { timeout: 30_000 },
    async () => {
      const row = (key: string): JobInsert => ({
        row: {
          id: uuidv7(),
          customerId,
          type: 'invoke',
          state: 'queued',
          payload: { substrate_id: substrateId, parameters: { x: 1, y: 1 } },
          maxAttempts: 1,
          priority: 0,
          delayMs: 0,
          webhookUrl: null,
          idempotencyKey: key,
          requestHash: key,
          scheduleName: null,
          retryOf: null,
        },
      });
      const rows = [row('group-a'), row('group-b')];
      const stored = await inDeadlock('group', () => insertJobs(suite.app.deps.orm.em, rows));
      expect(stored.map((job) => job?.id)).toEqual(rows.map(({ row }) => row.id));
      expect(await keysOf('group')).toEqual([
        { idempotency_key: 'group-a', job_id: rows[0]!.row.id },
        { idempotency_key: 'group-b', job_id: rows[1]!.row.id },
      ]);
    },
  );

  it('gives a key sent twice in one request to the first job that names it, keys being taken in key order', async () => {
    const job = (key: string, x: number) => ({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x, y: 0 } },
      idempotency_key: key,
    });
    const twice = await suite.request('POST', '/api/v1/jobs/bulk', {
      token: alice.accessToken,
      body: { jobs: [job('twice-z', 1), job('twice-a', 2), job('twice-z', 1)] },
    });
    expect(twice.status, twice.text).toBe(202);
    const ids = (twice.body.items as Array<{ id: string }>).map((item) => item.id);
    expect(ids[2]).toBe(ids[0]);
    expect(ids[1]).not.toBe(ids[0]);
    const conflict = await suite.request('POST', '/api/v1/jobs/bulk', {
      token: alice.accessToken,
      body: { jobs: [job('twice-y', 1), job('twice-b', 2), job('twice-y', 3)] },
    });
    expectProblem(conflict, 422, 'unprocessable', ['jobs[2].idempotency_key']);
  });

  it('frees keys whose window has passed, locking them in key order, so they name the new jobs', async () => {
    const job = (key: string) => ({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { x: 1, y: 2 } },
      idempotency_key: key,
    });
    const keys = ['old-c', 'old-a', 'old-b'];
    const first = await suite.request('POST', '/api/v1/jobs/bulk', { token: alice.accessToken, body: { jobs: keys.map(job) } });
    expect(first.status, first.text).toBe(202);
    await suite.app.sql(
      `update job_idempotency_keys set created_at = now() - interval '25 hours' where customer_id = $1 and idempotency_key like 'old-%'`,
      [customerId],
    );
    const again = await Promise.all(
      [keys, [...keys].reverse()].map((list) =>
        suite.request('POST', '/api/v1/jobs/bulk', { token: alice.accessToken, body: { jobs: list.map(job) } }),
      ),
    );
    expect(again.map((answer) => answer.status)).toEqual([202, 202]);
    const [forward, reverse] = again.map((answer) => (answer.body.items as Array<{ id: string }>).map((item) => item.id));
    // Both name the same new jobs (one request freed the keys and took them, the other replayed them).
    expect(reverse!.reverse()).toEqual(forward);
    for (const [i, id] of forward!.entries()) expect(id).not.toBe(first.body.items[i].id);
    const keyRows = await suite.app.sql<{ idempotency_key: string; job_id: string }>(
      `select idempotency_key, job_id from job_idempotency_keys where customer_id = $1 and idempotency_key like 'old-%'`,
      [customerId],
    );
    expect(new Map(keyRows.map((row) => [row.idempotency_key, row.job_id]))).toEqual(new Map(keys.map((key, i) => [key, forward![i]])));
  });
});
