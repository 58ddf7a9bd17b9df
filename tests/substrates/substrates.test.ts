import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import type { httpClient } from '../helpers/http.js';
import { outOfRangeTimes } from '../helpers/out-of-range-times.js';
import { useTestApp } from '../helpers/suite.js';

const suite = useTestApp({ workers: true, users: 2 });
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  ({ request } = suite);
  [alice, bob] = suite.users as [TestUser, TestUser];
});

const create = (token: string, body: unknown) => request('POST', '/api/v1/substrates', { token, body });

describe('substrates', () => {
  it('creates an expression substrate with a 64-bit id and a decimal-string identity, never returning the expression', async () => {
    const response = await create(alice.accessToken, { expression_type: 'expression', expression: 'a + b', metadata: { name: 'sum' } });
    expect(response.status).toBe(201);
    expect(response.body.substrate_id).toMatch(/^0x[0-9a-f]{16}$/);
    expect(typeof response.body.identity).toBe('string');
    expect(BigInt(response.body.identity)).toBe(BigInt(response.body.substrate_id));
    expect(response.text).not.toContain('a + b');
    const fetched = await request('GET', `/api/v1/substrates/${response.body.substrate_id}`, { token: alice.accessToken });
    expect(fetched.status).toBe(200);
    expect(fetched.text).not.toContain('a + b');
  });

  it('answers 200 with the existing substrate when it is created again', async () => {
    const first = await create(alice.accessToken, { expression_type: 'expression', expression: 'a - b' });
    const again = await create(alice.accessToken, { expression_type: 'expression', expression: 'a - b' });
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body.substrate_id).toBe(first.body.substrate_id);
  });

  it('gives two owners of the same expression different substrates', async () => {
    const mine = await create(alice.accessToken, { expression_type: 'expression', expression: 'a * 2' });
    const theirs = await create(bob.accessToken, { expression_type: 'expression', expression: 'a * 2' });
    expect(theirs.status).toBe(201);
    expect(theirs.body.substrate_id).not.toBe(mine.body.substrate_id);
  });

  it('answers 422 with the position of a syntax error', async () => {
    const response = await create(alice.accessToken, { expression_type: 'expression', expression: 'x * (y' });
    expect(response.status).toBe(422);
    expect(response.body.errors[0].field).toBe('body.expression');
    expect(response.body.errors[0].position).toMatchObject({ line: 1 });
    expect(response.body.errors[0].message).toMatch(/column \d+/);
  });

  it.each([
    ['constructor.constructor("return process")()'],
    ['this.constructor.constructor("return process.exit()")()'],
    ['__proto__.polluted'],
    ['process.exit()'],
    ['require("child_process").execSync("id")'],
  ])('treats %s as data: it never reaches JavaScript', async (expression) => {
    const response = await create(alice.accessToken, { expression_type: 'expression', expression });
    if (response.status === 422) {
      expect(response.body.type).toMatch(/\/unprocessable$/);
      return;
    }
    expect(response.status).toBe(201);
    const invoked = await request('POST', `/api/v1/substrates/${response.body.substrate_id}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: {} },
    });
    expect(invoked.status).toBe(200);
    expect(invoked.body.state).toBe('failed');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await request('GET', '/api/v1/health')).status).toBe(200);
  });

  it('rejects an expression over the size cap with 422', async () => {
    const response = await create(alice.accessToken, { expression_type: 'expression', expression: '1 + '.repeat(2000) + '1' });
    expect(response.status).toBe(422);
  });

  it('rejects a nested expression over the depth cap with 422', async () => {
    const response = await create(alice.accessToken, { expression_type: 'expression', expression: '('.repeat(40) + '1' + ')'.repeat(40) });
    expect(response.status).toBe(422);
  });

  it('answers 400 naming the field for a constant without a value', async () => {
    const response = await create(alice.accessToken, { expression_type: 'constant' });
    expect(response.status).toBe(400);
    expect(response.body.errors[0].field).toBe('body.value');
  });

  it('evaluates a constant substrate to its value', async () => {
    const constant = await create(alice.accessToken, { expression_type: 'constant', value: 2.5 });
    const response = await request('POST', `/api/v1/substrates/${constant.body.substrate_id}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: {},
    });
    expect(response.body.result.result).toBe(2.5);
  });

  it("answers 404 for another customer's substrate on every verb", async () => {
    const mine = await create(alice.accessToken, { expression_type: 'constant', value: 7 });
    const id = mine.body.substrate_id;
    for (const [method, path] of [
      ['GET', `/api/v1/substrates/${id}`],
      ['DELETE', `/api/v1/substrates/${id}`],
      ['POST', `/api/v1/substrates/${id}/invoke`],
      ['POST', `/api/v1/substrates/${id}/divide`],
    ] as const) {
      const response = await request(method, path, { token: bob.accessToken, body: method === 'POST' ? {} : undefined });
      expect(response.status, `${method} ${path}`).toBe(404);
    }
  });

  it('deletes a substrate, after which invoking it is 404', async () => {
    const doomed = await create(alice.accessToken, { expression_type: 'constant', value: 1 });
    expect((await request('DELETE', `/api/v1/substrates/${doomed.body.substrate_id}`, { token: alice.accessToken })).status).toBe(204);
    const invoked = await request('POST', `/api/v1/substrates/${doomed.body.substrate_id}/invoke`, { token: alice.accessToken, body: {} });
    expect(invoked.status).toBe(404);
  });

  it('lists substrates with metadata and type filters and a cursor', async () => {
    const carol = await registerUser(request);
    for (let i = 0; i < 5; i++) {
      await create(carol.accessToken, {
        expression_type: 'constant',
        value: i,
        metadata: { name: `c${i}`, team: i % 2 === 0 ? 'even' : 'odd' },
      });
    }
    await create(carol.accessToken, { expression_type: 'expression', expression: 'q + 1', metadata: { team: 'even' } });
    const even = await request('GET', '/api/v1/substrates?metadata.team=even&expression_type=constant', { token: carol.accessToken });
    expect(even.body.items).toHaveLength(3);
    const named = await request('GET', '/api/v1/substrates?name=c3', { token: carol.accessToken });
    expect(named.body.items.map((s: { value: number }) => s.value)).toEqual([3]);
    const pageOne = await request('GET', '/api/v1/substrates?limit=4', { token: carol.accessToken });
    const pageTwo = await request('GET', `/api/v1/substrates?limit=4&cursor=${pageOne.body.next_cursor}`, { token: carol.accessToken });
    expect(pageOne.body.items).toHaveLength(4);
    expect(pageTwo.body.items).toHaveLength(2);
    expect(pageTwo.body.next_cursor).toBeNull();
  });

  it('pages through substrates created together (one batch, one created_at) without skipping any', async () => {
    const erin = await registerUser(request);
    const created = await request('POST', '/api/v1/substrates/batch', {
      token: erin.accessToken,
      body: { substrates: [0, 1, 2, 3, 4].map((value) => ({ expression_type: 'constant', value, metadata: { group: 'paged' } })) },
    });
    expect(created.status).toBe(201);
    const seen: number[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 5; page++) {
      const query: string = cursor ? `&cursor=${cursor}` : '';
      const answer = await request('GET', `/api/v1/substrates?metadata.group=paged&limit=2${query}`, { token: erin.accessToken });
      seen.push(...answer.body.items.map((substrate: { value: number }) => substrate.value));
      cursor = answer.body.next_cursor;
      if (!cursor) break;
    }
    // A cursor cut to the millisecond skipped the rest of the batch after the first page.
    expect(seen.sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('refuses a __proto__ metadata key with 400 naming it (it used to vanish), and a metadata.__proto__ filter matches nothing', async () => {
    const frank = await registerUser(request);
    const created = await create(frank.accessToken, { expression_type: 'constant', value: 1, metadata: { b: 2 } });
    const refused = await request('PATCH', `/api/v1/substrates/${created.body.substrate_id}`, {
      token: frank.accessToken,
      rawBody: '{"metadata": {"__proto__": {"a": 1}, "b": 2}}',
    });
    expectProblem(refused, 400, 'validation', ['body.metadata.__proto__']);
    const invoked = await request('POST', `/api/v1/substrates/${created.body.substrate_id}/invoke`, {
      token: frank.accessToken,
      rawBody: '{"parameters": {"__proto__": {"x": 3}, "y": 4}}',
    });
    expectProblem(invoked, 400, 'validation', ['body.parameters.__proto__']);
    const filtered = await request('GET', '/api/v1/substrates?metadata.__proto__=nothing', { token: frank.accessToken });
    expect(filtered.status).toBe(200);
    expect(filtered.body.items).toEqual([]);
    expect((await request('GET', '/api/v1/substrates?metadata.b=2', { token: frank.accessToken })).body.items).toHaveLength(1);
  });

  it('filters by created_after within years 0001–9999, and answers a time outside them, or a cursor naming one, with 400 (not a 500)', async () => {
    const dave = await registerUser(request);
    await create(dave.accessToken, { expression_type: 'constant', value: 1 });
    const since = (time: string) =>
      request('GET', `/api/v1/substrates?created_after=${encodeURIComponent(time)}`, { token: dave.accessToken });
    expect((await since('0001-01-01T00:00:00Z')).body.items).toHaveLength(1);
    expect((await since('9999-12-31T23:59:59.999Z')).body.items).toEqual([]);
    // A date alone is that day's start in UTC; an impossible one is a 400 like any bad time.
    expect((await since('2000-01-01')).body.items).toHaveLength(1);
    expect((await since('9999-12-31')).body.items).toEqual([]);
    for (const bad of ['2026-02-30', '2026-13-01', '2026-1-01', '20260101'])
      expectProblem(await since(bad), 400, 'validation', ['query.created_after']);
    for (const time of outOfRangeTimes) {
      expectProblem(await since(time), 400, 'validation', ['query.created_after']);
      const cursor = Buffer.from(JSON.stringify({ createdAt: time, id: '0x0000000000000001' })).toString('base64url');
      const paged = await request('GET', `/api/v1/substrates?cursor=${cursor}`, { token: dave.accessToken });
      expectProblem(paged, 400, 'validation', ['query.cursor']);
    }
  });

  it('answers a top-level name with 400 pointing at metadata.name, which ?name= filters on', async () => {
    const named = await create(alice.accessToken, { expression_type: 'constant', value: 77, name: 'seventy-seven' });
    expect(named.status).toBe(400);
    const error = named.body.errors.find((e: { field: string }) => e.field === 'body.name');
    expect(error?.message).toMatch(/metadata\.name/);
    expect(error?.message).toMatch(/\?name=/);
    const inBatch = await request('POST', '/api/v1/substrates/batch', {
      token: alice.accessToken,
      body: { substrates: [{ expression_type: 'constant', value: 77, name: 'x' }] },
    });
    expect(inBatch.status).toBe(400);
    expect(inBatch.body.errors.find((e: { field: string }) => e.field === 'body.substrates.0.name')?.message).toMatch(/metadata\.name/);
    const created = await create(alice.accessToken, { expression_type: 'constant', value: 77, metadata: { name: 'seventy-seven' } });
    const patched = await request('PATCH', `/api/v1/substrates/${created.body.substrate_id}`, {
      token: alice.accessToken,
      body: { name: 'renamed' },
    });
    expect(patched.status).toBe(400);
    expect(patched.body.errors.find((e: { field: string }) => e.field === 'body.name')?.message).toMatch(/metadata\.name/);
    const found = await request('GET', '/api/v1/substrates?name=seventy-seven', { token: alice.accessToken });
    expect(found.body.items.map((s: { substrate_id: string }) => s.substrate_id)).toEqual([created.body.substrate_id]);
    const documented = (await request('GET', '/api/v1/openapi.json')).body.paths['/substrates'].get.parameters.find(
      (p: { name: string }) => p.name === 'name',
    );
    expect(documented.description).toMatch(/metadata\.name/);
  });
});

describe('divide', () => {
  it('answers 9 Fibonacci dimensions whose values differ between two substrates', async () => {
    const one = await create(alice.accessToken, {
      expression_type: 'expression',
      expression: 'x * y + size(tags)',
      metadata: { name: 'one' },
    });
    const two = await create(alice.accessToken, { expression_type: 'constant', value: 42 });
    await request('POST', `/api/v1/substrates/${one.body.substrate_id}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=5' },
      body: { parameters: { x: 1, y: 2, tags: [] } },
    });
    const divide = (id: string) =>
      request('POST', `/api/v1/substrates/${id}/divide`, { token: alice.accessToken, headers: { prefer: 'wait=5' } });
    const [a, b] = await Promise.all([divide(one.body.substrate_id), divide(two.body.substrate_id)]);
    expect(a.status).toBe(200);
    expect(a.body.result.fibonacci_sequence).toEqual([0, 1, 1, 2, 3, 5, 8, 13, 21]);
    expect(a.body.result.dimensions.map((d: { name: string }) => d.name)).toEqual([
      'Void',
      'Identity',
      'Domain',
      'Length',
      'Area',
      'Volume',
      'Frequency',
      'System',
      'Complete',
    ]);
    expect(a.body.result.dimensions.map((d: { level: number }) => d.level)).toEqual([0, 1, 1, 2, 3, 5, 8, 13, 21]);
    expect(a.body.result.dimensions[0].value.free_variables).toEqual(['tags', 'x', 'y']);
    expect(a.body.result.dimensions[7].value.functions).toEqual(['size']);
    for (let level = 0; level < 9; level++) {
      if (level === 4) continue; // neither has relationships
      expect(a.body.result.dimensions[level].value, `dimension ${level}`).not.toEqual(b.body.result.dimensions[level].value);
    }
  });
});
