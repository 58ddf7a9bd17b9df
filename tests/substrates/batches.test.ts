import { beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import type { httpClient } from '../helpers/http.js';
import { waitFor } from '../helpers/http.js';
import type { TestApp } from '../helpers/test-app.js';
import { useTestApp } from '../helpers/suite.js';

let product: string;
let constant: string;

const suite = useTestApp({ workers: true, users: 2 });
let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  ({ app, request } = suite);
  [alice, bob] = suite.users as [TestUser, TestUser];
  product = (
    await request('POST', '/api/v1/substrates', { token: alice.accessToken, body: { expression_type: 'expression', expression: 'x * y' } })
  ).body.substrate_id;
  constant = (await request('POST', '/api/v1/substrates', { token: alice.accessToken, body: { expression_type: 'constant', value: 9 } }))
    .body.substrate_id;
});

async function allItems(batchId: string, token: string) {
  const items: Array<{ index: number; state: string; result?: unknown; error?: string }> = [];
  let cursor: string | null = null;
  do {
    const response: { body: { items: typeof items; next_cursor: string | null } } = await request(
      'GET',
      `/api/v1/batches/${batchId}/items?limit=100${cursor ? `&cursor=${cursor}` : ''}`,
      { token },
    );
    items.push(...response.body.items);
    cursor = response.body.next_cursor;
  } while (cursor);
  return items;
}

describe('batches', () => {
  it('runs 10,000 invocations with correct per-item results in submission order', async () => {
    const invocations = Array.from({ length: 10_000 }, (_, i) => ({ substrate_id: product, parameters: { x: i, y: 2 } }));
    const submitted = await request('POST', '/api/v1/batches', { token: alice.accessToken, body: { invocations } });
    expect(submitted.status).toBe(202);
    const batchId = submitted.body.id;
    const done = await waitFor(
      async () => {
        const status = await request('GET', `/api/v1/batches/${batchId}`, { token: alice.accessToken });
        return status.body.state === 'completed' ? status : null;
      },
      60_000,
      100,
    );
    expect(done.body).toMatchObject({ id: batchId, total: 10_000, completed: 10_000, failed: 0 });
    const rows = await app.sql<{ index: number; result: number }>(
      'select index, result from batch_items where batch_id = $1 order by index',
      [batchId],
    );
    expect(rows).toHaveLength(10_000);
    expect(rows.every((row) => row.result === row.index * 2)).toBe(true);
    const firstPage = await request('GET', `/api/v1/batches/${batchId}/items?limit=3`, { token: alice.accessToken });
    expect(firstPage.body.items).toEqual([
      { index: 0, substrate_id: product, state: 'completed', result: 0 },
      { index: 1, substrate_id: product, state: 'completed', result: 2 },
      { index: 2, substrate_id: product, state: 'completed', result: 4 },
    ]);
  }, 90_000);

  it('fails a bad item alone: unknown substrate, missing parameter, non-finite result', async () => {
    const submitted = await request('POST', '/api/v1/batches', {
      token: alice.accessToken,
      headers: { prefer: 'wait=10' },
      body: {
        invocations: [
          { substrate_id: product, parameters: { x: 3, y: 4 } },
          { substrate_id: '0x0000000000000000', parameters: {} },
          { substrate_id: product, parameters: { x: 3 } },
          { substrate_id: constant },
          { substrate_id: product, parameters: { x: 1e300, y: 1e300 } },
        ],
      },
    });
    expect(submitted.status).toBe(200);
    const status = await request('GET', `/api/v1/batches/${submitted.body.id}`, { token: alice.accessToken });
    expect(status.body).toMatchObject({ state: 'completed', total: 5, completed: 2, failed: 3 });
    const items = await allItems(submitted.body.id, alice.accessToken);
    expect(items.map((item) => item.state)).toEqual(['completed', 'failed', 'failed', 'completed', 'failed']);
    expect(items[0]!.result).toBe(12);
    expect(items[1]!.error).toMatch(/not found/);
    expect(items[3]!.result).toBe(9);
    expect(items[4]!.error).toMatch(/finite/);

    const failed = await request('GET', `/api/v1/batches/${submitted.body.id}/items?state=failed`, { token: alice.accessToken });
    expect(failed.status, failed.text).toBe(200);
    expect(failed.body.items.map((item: { index: number }) => item.index)).toEqual([1, 2, 4]);
    expect(failed.body.items.every((item: { state: string; result?: unknown }) => item.state === 'failed' && !('result' in item))).toBe(
      true,
    );
    const completed = await request('GET', `/api/v1/batches/${submitted.body.id}/items?state=completed`, { token: alice.accessToken });
    expect(completed.body.items).toEqual([
      { index: 0, substrate_id: product, state: 'completed', result: 12 },
      { index: 3, substrate_id: constant, state: 'completed', result: 9 },
    ]);
  });

  it('pages through the failed items alone with the cursor, and refuses an unknown ?state= with 400', async () => {
    const invocations = Array.from({ length: 9 }, (_, i) =>
      i % 3 === 0 ? { substrate_id: product, parameters: { x: i } } : { substrate_id: constant },
    );
    const submitted = await request('POST', '/api/v1/batches', {
      token: alice.accessToken,
      headers: { prefer: 'wait=10' },
      body: { invocations },
    });
    expect(submitted.status, submitted.text).toBe(200);
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const response: { status: number; body: { items: Array<{ index: number; state: string }>; next_cursor: string | null } } =
        await request('GET', `/api/v1/batches/${submitted.body.id}/items?state=failed&limit=2${cursor ? `&cursor=${cursor}` : ''}`, {
          token: alice.accessToken,
        });
      expect(response.status).toBe(200);
      expect(response.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...response.body.items.map((item) => item.index));
      cursor = response.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([0, 3, 6]);
    const bad = await request('GET', `/api/v1/batches/${submitted.body.id}/items?state=queued`, { token: alice.accessToken });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('query.state');
  });

  it('rejects more than 10,000 invocations with 422 (a limit) and a malformed item with 400, naming the field', async () => {
    const tooMany = Array.from({ length: 10_001 }, () => ({ substrate_id: constant }));
    const big = await request('POST', '/api/v1/batches', { token: alice.accessToken, body: { invocations: tooMany } });
    expect(big.status).toBe(422);
    expect(big.body.errors[0].field).toBe('body.invocations');
    const malformed = await request('POST', '/api/v1/batches', {
      token: alice.accessToken,
      body: { invocations: [{ substrate_id: 'x' }] },
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.errors[0].field).toBe('body.invocations.0.substrate_id');
  });

  it("answers 404 for another customer's batch", async () => {
    const submitted = await request('POST', '/api/v1/batches', {
      token: alice.accessToken,
      body: { invocations: [{ substrate_id: constant }] },
    });
    expect((await request('GET', `/api/v1/batches/${submitted.body.id}`, { token: bob.accessToken })).status).toBe(404);
    expect((await request('GET', `/api/v1/batches/${submitted.body.id}/items`, { token: bob.accessToken })).status).toBe(404);
  });

  it('creates up to 1,000 substrates in one transaction, all or nothing', async () => {
    const substrates = Array.from({ length: 1000 }, (_, i) => ({ expression_type: 'expression', expression: `x + ${i}` }));
    const created = await request('POST', '/api/v1/substrates/batch', { token: bob.accessToken, body: { substrates } });
    expect(created.status).toBe(201);
    expect(created.body.created).toBe(1000);
    const broken = [
      ...substrates.slice(0, 10).map((s, i) => ({ ...s, expression: `y + ${i}` })),
      { expression_type: 'expression', expression: 'y + (' },
    ];
    const refused = await request('POST', '/api/v1/substrates/batch', { token: bob.accessToken, body: { substrates: broken } });
    expect(refused.status).toBe(422);
    expect(refused.body.errors[0].field).toBe('body.substrates.10.expression');
    const listed = await request('GET', '/api/v1/substrates?limit=100', { token: bob.accessToken });
    const [count] = await app.sql<{ n: string }>(
      `select count(*) as n from substrates where customer_id = (select customer_id from users where email = $1)`,
      [bob.email],
    );
    expect(count?.n).toBe('1000');
    expect(listed.body.items).toHaveLength(100);
    const overLimit = await request('POST', '/api/v1/substrates/batch', {
      token: bob.accessToken,
      body: { substrates: Array.from({ length: 1001 }, (_, i) => ({ expression_type: 'constant', value: i })) },
    });
    expect(overLimit.status).toBe(422);
    expect(overLimit.body.errors[0].field).toBe('body.substrates');
  });
});
