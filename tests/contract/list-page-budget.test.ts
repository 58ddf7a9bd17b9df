import { beforeAll, describe, expect, it } from 'vitest';
import { pageMaxBytes } from '../../api/pagination.js';
import { loginAdmin } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * A list page is bounded in bytes as well as in items (README, API overview): a page whose items' results or payloads
 * add up past `pageMaxBytes` ends early with a next_cursor, and paging on still gives every item once, in order.
 * The large values are written in SQL onto rows made through the API: this is a test of the read path.
 */
const suite = useTestApp({ users: 2 });
let token = '';
let adminToken = '';
let substrateId = '';

/** The size of the nth large value, 200–400 KB: ~14 fit a page, and no page's total lies near the budget. */
const largeBytes = (n: number) => 200_000 + (n % 5) * 50_000;
/** `largeBytes` of SQL for the row numbered by the `n` expression. */
const largeBytesSql = (n: string) => `(200000 + (${n} % 5) * 50000)::int`;
/** The bytes of a list item's large value, as JSON. */
const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

interface Page<Item> {
  items: Item[];
  next_cursor: string | null;
}

/** Every page of `path` (a list URL with its query) at `limit=100`, following next_cursor to the end. */
async function allPages<Item>(path: string, as = token): Promise<Array<Page<Item>>> {
  const pages: Array<Page<Item>> = [];
  let cursor: string | null = null;
  do {
    const url: string = `${path}${path.includes('?') ? '&' : '?'}limit=100${cursor ? `&cursor=${cursor}` : ''}`;
    const response = await suite.request<Page<Item>>('GET', url, { token: as });
    expect(response.status, response.text).toBe(200);
    pages.push(response.body);
    cursor = response.body.next_cursor;
    expect(pages.length).toBeLessThan(50);
  } while (cursor);
  return pages;
}

/** `count` invocations of `substrate`, delayed an hour (there are no workers anyway): their ids. */
async function delayedJobs(as: string, substrate: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 0; n < count; n++) {
    const response = await suite.request('POST', '/api/v1/jobs', {
      token: as,
      body: { type: 'invoke', payload: { substrate_id: substrate }, delay_ms: 3_600_000 },
    });
    expect(response.status, response.text).toBe(202);
    ids.push(response.body.id);
  }
  return ids;
}

/**
 * Each page but the last is cut by the budget: under it, and the page's next item would have taken it over. The items
 * of all pages are `expected`, once each, in order.
 */
function expectBudgetedPages<Item>(
  pages: Array<Page<Item>>,
  bytesOf: (item: Item) => number,
  keyOf: (item: Item) => unknown,
  expected: unknown[],
) {
  const items = pages.flatMap((page) => page.items);
  expect(items.map(keyOf)).toEqual(expected);
  expect(pages.length).toBeGreaterThan(1);
  for (const [n, page] of pages.entries()) {
    const bytes = page.items.reduce((sum, item) => sum + bytesOf(item), 0);
    expect(bytes).toBeLessThanOrEqual(pageMaxBytes);
    const next = pages[n + 1]?.items[0];
    if (next === undefined) expect(page.next_cursor).toBeNull();
    else expect(bytes + bytesOf(next)).toBeGreaterThan(pageMaxBytes);
  }
}

beforeAll(async () => {
  token = suite.users[0]!.accessToken;
  adminToken = await loginAdmin(suite.request);
  const substrate = await suite.request('POST', '/api/v1/substrates', { token, body: { expression_type: 'constant', value: 9 } });
  substrateId = substrate.body.substrate_id;
});

describe('list pages bounded in bytes', () => {
  it('GET /batches/:id/items ends a page of large results early, and its cursor gives every item once in order', async () => {
    // No workers: the batch stays queued, and its items are written as a run of it would, with strings of 200–400 KB.
    const batch = await suite.request('POST', '/api/v1/batches', { token, body: { invocations: [{ substrate_id: substrateId }] } });
    expect(batch.status, batch.text).toBe(202);
    await suite.app.sql(
      `insert into batch_items (batch_id, index, substrate_id, state, result)
       select $1, n, $2, 'completed', to_jsonb(repeat('x', ${largeBytesSql('n')})) from generate_series(0, 39) n`,
      [batch.body.id, substrateId],
    );
    type Item = { index: number; result: string };
    const pages = await allPages<Item>(`/api/v1/batches/${batch.body.id}/items`);
    expect(pages[0]!.items.length).toBeLessThan(40);
    expectBudgetedPages(
      pages,
      (item) => jsonBytes(item.result),
      (item) => item.index,
      Array.from({ length: 40 }, (_, n) => n),
    );
    expect(pages[0]!.items[0]!.result).toHaveLength(largeBytes(0));
    // The admin's view of the batch reads the same pages.
    const adminPage = await suite.request('GET', `/api/v1/admin/batches/${batch.body.id}/items?limit=100`, { token: adminToken });
    expect(adminPage.status, adminPage.text).toBe(200);
    expect(adminPage.body).toEqual(pages[0]);
  });

  it('GET /batches/:id/items still gives full pages of limit when the results are small', async () => {
    const batch = await suite.request('POST', '/api/v1/batches', { token, body: { invocations: [{ substrate_id: substrateId }] } });
    await suite.app.sql(
      `insert into batch_items (batch_id, index, substrate_id, state, result) select $1, n, $2, 'completed', to_jsonb(n) from generate_series(0, 249) n`,
      [batch.body.id, substrateId],
    );
    const pages = await allPages<{ index: number }>(`/api/v1/batches/${batch.body.id}/items`);
    expect(pages.map((page) => page.items.length)).toEqual([100, 100, 50]);
    expect(pages.flatMap((page) => page.items.map((item) => item.index))).toEqual(Array.from({ length: 250 }, (_, n) => n));
  });

  it('GET /jobs ends a page of large results early, and its cursor gives every job once, newest first', async () => {
    // The customer's batches above are jobs too: the list is of its invocations. Finished in SQL with results of 200–400 KB.
    const ids = await delayedJobs(token, substrateId, 30);
    await suite.app.sql(
      `update jobs set state = 'completed', finished_at = now(), result = to_jsonb(repeat('x', ${largeBytesSql('numbered.n')}))
         from (select id, row_number() over (order by id) - 1 as n from jobs where id = any($1::uuid[])) numbered
        where jobs.id = numbered.id`,
      [ids],
    );
    type Job = { id: string; result: string };
    const newestFirst = [...ids].sort().reverse();
    const pages = await allPages<Job>('/api/v1/jobs?type=invoke');
    expect(pages[0]!.items.length).toBeLessThan(30);
    expectBudgetedPages(
      pages,
      (job) => jsonBytes(job.result),
      (job) => job.id,
      newestFirst,
    );
    // A state list reads one arm per state; its pages are cut the same way.
    expectBudgetedPages(
      await allPages<Job>('/api/v1/jobs?type=invoke&state=completed,failed'),
      (job) => jsonBytes(job.result),
      (job) => job.id,
      newestFirst,
    );
    // So are the admin's pages of every customer's jobs, with and without an error filter.
    const customerId = (await suite.request('GET', '/api/v1/auth/me', { token })).body.customer_id as string;
    expectBudgetedPages(
      await allPages<Job>(`/api/v1/admin/jobs?customer_id=${customerId}&type=invoke`, adminToken),
      (job) => jsonBytes(job.result),
      (job) => job.id,
      newestFirst,
    );
  });

  it('GET /jobs still gives full pages of limit when payloads are large and results small: a list shows no payload', async () => {
    const other = suite.users[1]!.accessToken;
    const own = await suite.request('POST', '/api/v1/substrates', { token: other, body: { expression_type: 'constant', value: 1 } });
    const ids = await delayedJobs(other, own.body.substrate_id, 120);
    await suite.app.sql(
      `update jobs set payload = payload || jsonb_build_object('parameters', jsonb_build_object('text', repeat('x', 200000))) where id = any($1::uuid[])`,
      [ids],
    );
    const pages = await allPages<{ id: string; payload?: unknown }>('/api/v1/jobs', other);
    expect(pages.map((page) => page.items.length)).toEqual([100, 20]);
    expect(pages.flatMap((page) => page.items.map((job) => job.id))).toEqual([...ids].sort().reverse());
    expect(pages[0]!.items[0]!.payload).toBeUndefined();
  });

  it('GET /jobs and the admin search by error text end a page of large errors early, and page through every job once', async () => {
    // Failed jobs whose error quotes 200–400 KB of the input; the admin's error_contains search probes the newest jobs first.
    const ids = await delayedJobs(token, substrateId, 20);
    await suite.app.sql(
      `update jobs set state = 'failed', finished_at = now(), error = 'disk full: ' || repeat('x', ${largeBytesSql('numbered.n')})
         from (select id, row_number() over (order by id) - 1 as n from jobs where id = any($1::uuid[])) numbered
        where jobs.id = numbered.id`,
      [ids],
    );
    type Job = { id: string; error: string };
    const newestFirst = [...ids].sort().reverse();
    const customerId = (await suite.request('GET', '/api/v1/auth/me', { token })).body.customer_id as string;
    for (const [path, as] of [
      ['/api/v1/jobs?state=failed', token],
      [`/api/v1/admin/jobs?customer_id=${customerId}&error_contains=${encodeURIComponent('disk full')}`, adminToken],
    ] as const) {
      const pages = await allPages<Job>(path, as);
      expect(pages[0]!.items.length).toBeLessThan(20);
      expectBudgetedPages(
        pages,
        (job) => Buffer.byteLength(job.error),
        (job) => job.id,
        newestFirst,
      );
    }
  });

  it('GET /schedules ends a page of large payloads early, and its cursor gives every schedule once by name', async () => {
    const names = Array.from({ length: 20 }, (_, n) => `report-${String(n).padStart(2, '0')}`);
    for (const name of names) {
      const created = await suite.request('POST', '/api/v1/schedules', {
        token,
        body: { name, cron: '0 0 1 1 *', job: { type: 'invoke', payload: { substrate_id: substrateId } } },
      });
      expect(created.status, created.text).toBe(201);
    }
    await suite.app.sql(
      `update schedules set payload = payload || jsonb_build_object('parameters', jsonb_build_object('text', repeat('x', ${largeBytesSql('substring(name from 8)::int')})))
        where name like 'report-%'`,
    );
    type Schedule = { name: string; job: { payload: { parameters: { text: string } } } };
    const pages = await allPages<Schedule>('/api/v1/schedules');
    expect(pages[0]!.items.length).toBeLessThan(20);
    expectBudgetedPages(
      pages,
      (schedule) => jsonBytes(schedule.job.payload),
      (schedule) => schedule.name,
      names,
    );
    expect(pages[0]!.items[0]!.job.payload.parameters.text).toHaveLength(largeBytes(0));
  });
});
