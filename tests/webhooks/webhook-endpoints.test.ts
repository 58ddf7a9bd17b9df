import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  app = await startTestApp();
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  bob = await registerUser(request);
});

afterAll(async () => {
  await app?.close();
});

const create = (token: string, body: unknown) => request('POST', '/api/v1/webhooks', { token, body });

describe('webhook endpoints', () => {
  it('registers an endpoint with 201 and its whsec_ secret, shown once: the list never shows it', async () => {
    const created = await create(alice.accessToken, {
      url: 'http://127.0.0.1:9/hooks/a',
      events: ['job.completed', 'job.failed', 'job.completed'],
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      id: expect.any(String),
      url: 'http://127.0.0.1:9/hooks/a',
      events: ['job.completed', 'job.failed'],
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });
    expect(created.headers.get('location')).toBe(`/api/v1/webhooks/${created.body.id}`);

    const listed = await request('GET', '/api/v1/webhooks', { token: alice.accessToken });
    expect(listed.status).toBe(200);
    const item = listed.body.items.find((i: { id: string }) => i.id === created.body.id);
    expect(item).toEqual({
      id: created.body.id,
      url: 'http://127.0.0.1:9/hooks/a',
      events: ['job.completed', 'job.failed'],
      created_at: expect.any(String),
      state: 'active',
      disabled_at: null,
      disabled_reason: null,
      breaker: { state: 'closed', consecutive_failures: 0, failing_since: null, open_until: null },
    });
    expect(listed.text).not.toContain('whsec_');
  });

  it('reads one endpoint by its id (the Location of its 201), without its secret', async () => {
    const created = await create(alice.accessToken, { url: 'http://127.0.0.1:9/hooks/one', events: ['batch.completed'] });
    const { secret: _secret, ...endpoint } = created.body;
    const read = await request('GET', created.headers.get('location') as string, { token: alice.accessToken });
    expect(read.status, read.text).toBe(200);
    expect(read.body).toEqual(endpoint);
    expect(read.text).not.toContain('whsec_');
    expectProblem(await request('GET', '/api/v1/webhooks/not-a-uuid', { token: alice.accessToken }), 400, 'validation', ['params.id']);
    expectProblem(
      await request('GET', '/api/v1/webhooks/0190b1a2-0000-7000-8000-000000000000', { token: alice.accessToken }),
      404,
      'not-found',
    );
  });

  it.each([
    ['a non-URL', { url: 'not a url', events: ['job.completed'] }, 'body.url'],
    ['a non-http URL', { url: 'ftp://127.0.0.1/hook', events: ['job.completed'] }, 'body.url'],
    ['an unknown event', { url: 'http://127.0.0.1/hook', events: ['job.started'] }, 'body.events.0'],
    ['no events', { url: 'http://127.0.0.1/hook', events: [] }, 'body.events'],
    ['a missing url', { events: ['job.completed'] }, 'body.url'],
    ['an unknown field', { url: 'http://127.0.0.1/hook', events: ['job.completed'], secret: 'mine' }, 'body.secret'],
  ])('rejects %s with 400 naming the field', async (_label, body, field) => {
    expectProblem(await create(alice.accessToken, body), 400, 'validation', [field]);
  });

  it('rejects an http URL past 2,048 characters with 400 saying it is too long, not that it is no http URL', async () => {
    const long = await create(alice.accessToken, { url: `http://127.0.0.1:9/${'a'.repeat(4981)}`, events: ['job.completed'] });
    expectProblem(long, 400, 'validation', ['body.url']);
    expect(long.body.errors).toEqual([{ field: 'body.url', message: 'is too long: at most 2,048 characters' }]);
    expect(long.body.detail).not.toContain('http or https');
    const longest = await create(alice.accessToken, { url: `http://127.0.0.1:9/${'a'.repeat(2048 - 19)}`, events: ['job.completed'] });
    expect(longest.status, longest.text).toBe(201);
  });

  it('pages the list with a cursor, and rejects limit=0 with 400', async () => {
    const user = await registerUser(request);
    for (const path of ['one', 'two', 'three'])
      await create(user.accessToken, { url: `http://127.0.0.1:9/${path}`, events: ['job.completed'] });
    const first = await request('GET', '/api/v1/webhooks?limit=2', { token: user.accessToken });
    expect(first.body.items.map((i: { url: string }) => i.url)).toEqual(['http://127.0.0.1:9/three', 'http://127.0.0.1:9/two']);
    const second = await request('GET', `/api/v1/webhooks?limit=2&cursor=${first.body.next_cursor}`, { token: user.accessToken });
    expect(second.body).toEqual({ items: [expect.objectContaining({ url: 'http://127.0.0.1:9/one' })], next_cursor: null });
    expectProblem(await request('GET', '/api/v1/webhooks?limit=0', { token: user.accessToken }), 400, 'validation', ['query.limit']);
  });

  it("answers 404 for another customer's webhook, on every route that names one", async () => {
    const mine = await create(alice.accessToken, { url: 'http://127.0.0.1:9/private', events: ['job.completed'] });
    const delivery = '0190b1a2-0000-7000-8000-000000000000';
    expectProblem(await request('GET', `/api/v1/webhooks/${mine.body.id}`, { token: bob.accessToken }), 404, 'not-found');
    expectProblem(await request('DELETE', `/api/v1/webhooks/${mine.body.id}`, { token: bob.accessToken }), 404, 'not-found');
    expectProblem(await request('GET', `/api/v1/webhooks/${mine.body.id}/deliveries`, { token: bob.accessToken }), 404, 'not-found');
    expectProblem(
      await request('POST', `/api/v1/webhooks/${mine.body.id}/deliveries/${delivery}/redeliver`, { token: bob.accessToken }),
      404,
      'not-found',
    );
    const bobs = await request('GET', '/api/v1/webhooks', { token: bob.accessToken });
    expect(bobs.body.items.map((i: { id: string }) => i.id)).not.toContain(mine.body.id);
  });

  it('deletes an endpoint with 204; a second delete is 404, and a malformed id 400', async () => {
    const created = await create(alice.accessToken, { url: 'http://127.0.0.1:9/doomed', events: ['job.failed'] });
    expect((await request('DELETE', `/api/v1/webhooks/${created.body.id}`, { token: alice.accessToken })).status).toBe(204);
    expectProblem(await request('DELETE', `/api/v1/webhooks/${created.body.id}`, { token: alice.accessToken }), 404, 'not-found');
    expectProblem(await request('DELETE', '/api/v1/webhooks/not-a-uuid', { token: alice.accessToken }), 400, 'validation', ['params.id']);
  });

  it('answers 404 for redelivering a delivery the endpoint does not have', async () => {
    const created = await create(alice.accessToken, { url: 'http://127.0.0.1:9/empty', events: ['job.failed'] });
    const missing = '0190b1a2-0000-7000-8000-000000000001';
    expectProblem(
      await request('POST', `/api/v1/webhooks/${created.body.id}/deliveries/${missing}/redeliver`, { token: alice.accessToken }),
      404,
      'not-found',
    );
  });

  it('keeps the cap of 50 endpoints under 80 parallel creates: exactly 50 are stored, the other 30 answer 422', async () => {
    const user = await registerUser(request);
    const answers = await Promise.all(
      Array.from({ length: 80 }, (_, i) =>
        create(user.accessToken, { url: `http://127.0.0.1:9/parallel/${i}`, events: ['job.completed'] }),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(50);
    // The refusal names a field, as every 4xx does (the schedule cap names body.name).
    for (const refused of answers.filter((answer) => answer.status !== 201)) expectProblem(refused, 422, 'unprocessable', ['body.url']);
    const listed = await request('GET', '/api/v1/webhooks?limit=100', { token: user.accessToken });
    expect(listed.body.items).toHaveLength(50);
  });

  it('creates the account secret on first read, returns the same one after, and rotates it on POST', async () => {
    const user = await registerUser(request);
    const first = await request('GET', '/api/v1/webhooks/secret', { token: user.accessToken });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ secret: expect.stringMatching(/^whsec_/), created_at: expect.any(String) });
    expect((await request('GET', '/api/v1/webhooks/secret', { token: user.accessToken })).body.secret).toBe(first.body.secret);
    const rotated = await request('POST', '/api/v1/webhooks/secret', { token: user.accessToken });
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(first.body.secret);
    expect((await request('GET', '/api/v1/webhooks/secret', { token: user.accessToken })).body.secret).toBe(rotated.body.secret);
    // Account secrets are per customer.
    expect((await request('GET', '/api/v1/webhooks/secret', { token: alice.accessToken })).body.secret).not.toBe(rotated.body.secret);
  });

  it('requires authentication', async () => {
    expectProblem(await request('GET', '/api/v1/webhooks'), 401, 'unauthorized');
  });

  it('rejects a job whose webhook_url is not http(s) with 400 naming body.webhook_url', async () => {
    const response = await request('POST', '/api/v1/jobs', {
      token: alice.accessToken,
      body: { type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [2, 3] } }, webhook_url: 'ftp://127.0.0.1/hook' },
    });
    expectProblem(response, 400, 'validation', ['body.webhook_url']);
  });

  it('takes a webhook_url only as POST /webhooks takes a url: `http:/host` and `http:host` are 400 on both', async () => {
    for (const url of ['http:/127.0.0.1/hook', 'http:127.0.0.1/hook']) {
      const job = await request('POST', '/api/v1/jobs', {
        token: alice.accessToken,
        body: { type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [2, 3] } }, webhook_url: url },
      });
      expectProblem(job, 400, 'validation', ['body.webhook_url']);
      const bulk = await request('POST', '/api/v1/jobs/bulk', {
        token: alice.accessToken,
        body: { jobs: [{ type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [2, 3] } }, webhook_url: url }] },
      });
      expectProblem(bulk, 400, 'validation', ['jobs[0].webhook_url']);
      expectProblem(
        await request('POST', '/api/v1/webhooks', { token: alice.accessToken, body: { url, events: ['job.completed'] } }),
        400,
        'validation',
        ['body.url'],
      );
    }
  });
});
