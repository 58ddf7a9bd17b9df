import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { outOfRangeTimes } from '../helpers/out-of-range-times.js';
import { useTestApp } from '../helpers/suite.js';
import { waitFor } from '../helpers/http.js';

/** GET /jobs filters and POST /jobs/:id/retry (SPEC §9, issue 19). */
const suite = useTestApp({ workers: true, users: 2 });
let token = '';
let otherToken = '';
let substrateId = '';
const ids = { completed: '', failed: '', cancelled: '', late: '' };

const submit = async (body: Record<string, unknown>, headers: Record<string, string> = { prefer: 'wait=20' }) => {
  const response = await suite.request('POST', '/api/v1/jobs', { token, headers, body });
  expect([200, 202], response.text).toContain(response.status);
  return response.body as { id: string; state: string; retry_of?: string };
};
const invoke = (parameters: Record<string, number>, extra: Record<string, unknown> = {}) =>
  submit({ type: 'invoke', payload: { substrate_id: substrateId, parameters, ...extra }, attempts: 1 });
const list = async (query: string, as = token) => {
  const response = await suite.request('GET', `/api/v1/jobs?${query}`, { token: as });
  expect(response.status, response.text).toBe(200);
  return (response.body.items as Array<{ id: string; state: string; retry_of?: string }>).map((job) => job.id);
};

beforeAll(async () => {
  token = suite.users[0]!.accessToken;
  otherToken = suite.users[1]!.accessToken;
  const substrate = await suite.request('POST', '/api/v1/substrates', {
    token,
    body: { expression_type: 'expression', expression: 'x * y' },
  });
  substrateId = substrate.body.substrate_id;
  ids.completed = (await invoke({ x: 2, y: 3 })).id;
  ids.failed = (await invoke({ x: 2, y: 3 }, { operation: { op: 'modulus', modulus: 0 } })).id;
  const delayed = await submit(
    { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 1, y: 1 } }, delay_ms: 3_600_000 },
    {},
  );
  ids.cancelled = delayed.id;
  expect((await suite.request('DELETE', `/api/v1/jobs/${ids.cancelled}`, { token })).body.state).toBe('cancelled');
  ids.late = (await invoke({ x: 5, y: 5 })).id;
}, 60_000);

describe('GET /jobs filters', () => {
  it('takes state as a comma-separated list or repeated, and refuses an unknown state naming query.state', async () => {
    const expected = [ids.cancelled, ids.failed];
    expect(await list('state=failed,cancelled')).toEqual(expected);
    expect(await list('state=failed&state=cancelled')).toEqual(expected);
    expect(await list('state=failed')).toEqual([ids.failed]);
    expect(await list('state=completed')).toEqual([ids.late, ids.completed]);
    expectProblem(await suite.request('GET', '/api/v1/jobs?state=failed,broken', { token }), 400, 'validation', ['query.state']);
    expectProblem(await suite.request('GET', '/api/v1/jobs?state=', { token }), 400, 'validation', ['query.state']);
  });

  it('pages a state list newest first with the cursor', async () => {
    const first = await suite.request('GET', '/api/v1/jobs?state=failed,cancelled,completed&limit=3', { token });
    expect(first.body.items.map((job: { id: string }) => job.id)).toEqual([ids.late, ids.cancelled, ids.failed]);
    const second = await suite.request('GET', `/api/v1/jobs?state=failed,cancelled,completed&limit=3&cursor=${first.body.next_cursor}`, {
      token,
    });
    expect(second.body).toEqual({ items: [expect.objectContaining({ id: ids.completed })], next_cursor: null });
  });

  it('filters by creation time (after inclusive, before exclusive) and refuses a bad time or an empty window', async () => {
    const [row] = await suite.app.sql<{ created_at: Date }>('select created_at from jobs where id = $1', [ids.late]);
    const at = row!.created_at.toISOString();
    expect(await list(`created_after=${at}`)).toEqual([ids.late]);
    expect(await list(`created_before=${at}`)).toEqual([ids.cancelled, ids.failed, ids.completed]);
    expect(await list(`created_after=${encodeURIComponent('2020-01-01T00:00:00+02:00')}&created_before=${at}&state=failed`)).toEqual([
      ids.failed,
    ]);
    expectProblem(await suite.request('GET', '/api/v1/jobs?created_after=yesterday', { token }), 400, 'validation', [
      'query.created_after',
    ]);
    // A date alone is ISO 8601 too: that day's start in UTC.
    expect(await list('created_before=2020-01-01')).toEqual([]);
    expect(await list(`created_after=2020-01-01&created_before=${at}`)).toEqual([ids.cancelled, ids.failed, ids.completed]);
    expectProblem(await suite.request('GET', '/api/v1/jobs?created_before=2026-12', { token }), 400, 'validation', [
      'query.created_before',
    ]);
    expectProblem(await suite.request('GET', '/api/v1/jobs?created_before=2026-13-01', { token }), 400, 'validation', [
      'query.created_before',
    ]);
    expectProblem(await suite.request('GET', `/api/v1/jobs?created_after=${at}&created_before=${at}`, { token }), 422, 'unprocessable', [
      'query.created_before',
    ]);
  });

  it.each(outOfRangeTimes)('refuses %s, a time outside years 0001–9999, with 400 naming the filter (not a 500)', async (time) => {
    for (const field of ['created_after', 'created_before']) {
      const response = await suite.request('GET', `/api/v1/jobs?${field}=${encodeURIComponent(time)}`, { token });
      expectProblem(response, 400, 'validation', [`query.${field}`]);
    }
  });

  it('takes the first and last instants of the range', async () => {
    expect(await list(`created_after=${encodeURIComponent('9999-12-31T23:59:59.999Z')}`)).toEqual([]);
    expect(await list(`created_before=${encodeURIComponent('0001-01-01T00:00:00Z')}`)).toEqual([]);
    expect(await list(`created_after=${encodeURIComponent('0001-01-01T00:00:00Z')}&state=failed`)).toEqual([ids.failed]);
  });

  it("filters by schedule name, only the caller's, and refuses a malformed name", async () => {
    await suite.app.sql(`update jobs set schedule_name = 'nightly' where id = $1`, [ids.completed]);
    expect(await list('schedule=nightly')).toEqual([ids.completed]);
    expect(await list('schedule=nightly', otherToken)).toEqual([]);
    expect(await list('schedule=other')).toEqual([]);
    expectProblem(await suite.request('GET', '/api/v1/jobs?schedule=../x', { token }), 400, 'validation', ['query.schedule']);
  });

  it("shows another customer none of the caller's jobs, whatever the filters", async () => {
    expect(await list('state=failed,cancelled,completed', otherToken)).toEqual([]);
    expect(await list('created_after=2020-01-01T00:00:00Z', otherToken)).toEqual([]);
  });
});

describe('POST /jobs/:id/retry', () => {
  it('runs a failed job again as a new job with retry_of, leaving the original as it was', async () => {
    const response = await suite.request('POST', `/api/v1/jobs/${ids.failed}/retry`, { token, headers: { prefer: 'wait=20' } });
    expect(response.status, response.text).toBe(200);
    expect(response.body).toMatchObject({ state: 'failed', type: 'invoke', retry_of: ids.failed });
    expect(response.body.id).not.toBe(ids.failed);
    expect(response.body.error).toMatch(/modulus/);
    const original = await suite.request('GET', `/api/v1/jobs/${ids.failed}`, { token });
    expect(original.body).toMatchObject({ id: ids.failed, state: 'failed' });
    expect(original.body.retry_of).toBeUndefined();
    const [row] = await suite.app.sql<{ payload: unknown; max_attempts: number }>('select payload, max_attempts from jobs where id = $1', [
      response.body.id,
    ]);
    expect(row).toEqual({
      payload: { substrate_id: substrateId, parameters: { x: 2, y: 3 }, operation: { op: 'modulus', modulus: 0 } },
      max_attempts: 1,
    });
  });

  it("answers 202 with Location and retry_of for a cancelled job (which runs now, without the original's delay)", async () => {
    const response = await suite.request('POST', `/api/v1/jobs/${ids.cancelled}/retry`, { token });
    expect(response.status, response.text).toBe(202);
    expect(response.body).toMatchObject({ state: 'queued', retry_of: ids.cancelled });
    expect(response.headers.get('location')).toBe(`/api/v1/jobs/${response.body.id}`);
    const finished = await suite.request('GET', `/api/v1/jobs/${response.body.id}`, { token, headers: {} });
    expect(finished.body.retry_of).toBe(ids.cancelled);
  });

  it('answers 409 for a job that is not failed or cancelled, and 404 for an unknown or foreign id', async () => {
    expectProblem(await suite.request('POST', `/api/v1/jobs/${ids.completed}/retry`, { token }), 409, 'conflict');
    expectProblem(await suite.request('POST', `/api/v1/jobs/${ids.failed}/retry`, { token: otherToken }), 404, 'not-found');
    expectProblem(await suite.request('POST', '/api/v1/jobs/0193a000-0000-7000-8000-000000000000/retry', { token }), 404, 'not-found');
    expectProblem(await suite.request('POST', '/api/v1/jobs/not-a-uuid/retry', { token }), 400, 'validation', ['params.id']);
  });

  it('answers a double click with one retry, and a retry asked for after that one ended with a new job', async () => {
    const retry = () => suite.request('POST', `/api/v1/jobs/${ids.failed}/retry`, { token });
    const [first, second] = await Promise.all([retry(), retry()]);
    expect([first.status, second.status]).toEqual([202, 202]);
    expect(second.body.id).toBe(first.body.id);
    await waitFor(async () => (await suite.request('GET', `/api/v1/jobs/${first.body.id}`, { token })).body.state === 'failed');
    const later = await retry();
    expect(later.status, later.text).toBe(202);
    expect(later.body).toMatchObject({ retry_of: ids.failed });
    expect(later.body.id).not.toBe(first.body.id);
  });

  it('keeps Idempotency-Key: the same key retries once', async () => {
    const headers = { 'idempotency-key': 'retry-once-1' };
    const first = await suite.request('POST', `/api/v1/jobs/${ids.failed}/retry`, { token, headers });
    const second = await suite.request('POST', `/api/v1/jobs/${ids.failed}/retry`, { token, headers });
    expect(first.status, first.text).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(await list(`state=failed,queued,active,completed`)).toContain(first.body.id);
  });
});
