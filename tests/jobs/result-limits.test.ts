import { beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { runBatch } from '../helpers/batches.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

const suite = useTestApp({ workers: true, users: 1, env: { RESULT_MAX_BYTES: '65536', INVOCATION_CACHE_MAX_BYTES: '16384' } });
let alice: TestUser;
let tenCopies: string;
let suffixed: string;
let sevenCopies: string;
let customerId: string;

beforeAll(async () => {
  alice = suite.users[0] as TestUser;
  customerId = (await suite.request('GET', '/api/v1/auth/me', { token: alice.accessToken })).body.customer_id;
  tenCopies = await createExpressionSubstrate(suite.request, alice.accessToken, '[s, s, s, s, s, s, s, s, s, s]');
  suffixed = await createExpressionSubstrate(suite.request, alice.accessToken, 's + s + string(n)');
  sevenCopies = await createExpressionSubstrate(suite.request, alice.accessToken, '[s, s, s, s, s, s, s]');
});

const invoke = (parameters: Record<string, unknown>) =>
  suite.request('POST', `/api/v1/substrates/${tenCopies}/invoke`, {
    token: alice.accessToken,
    headers: { prefer: 'wait=10' },
    body: { parameters },
  });

const cacheKey = () => `${suite.app.config.queuePrefix}:cache:invoke:${customerId}`;
/** The cached results of `tenCopies` (the customer's hash also holds reserved fields: its size, epochs). */
const cachedValues = async () =>
  Object.entries(await suite.app.deps.redis.hgetall(cacheKey()))
    .filter(([field]) => field.startsWith(`${tenCopies}:`))
    .map(([, value]) => value);

describe('bounded results', () => {
  it('fails a job whose result is over RESULT_MAX_BYTES with result_too_large, storing nothing big anywhere', async () => {
    const s = 'a'.repeat(8000); // 10 copies: ~80 KB of JSON, over the 64 KiB limit of this file
    const answer = await invoke({ s });
    expect(answer.body.state).toBe('failed');
    expect(answer.body.error).toMatch(/^result_too_large: the result is \d+ bytes of JSON, over the RESULT_MAX_BYTES limit of 65536 bytes/);
    const [row] = await suite.app.sql<{ result: unknown; attempts_made: number }>('select result, attempts_made from jobs where id = $1', [
      answer.body.id,
    ]);
    expect(row).toEqual({ result: null, attempts_made: 1 });
    const bullJob = await suite.app.deps.queues.forJob('invoke', answer.body.id).getJob(answer.body.id);
    expect(JSON.stringify(bullJob?.returnvalue ?? null).length).toBeLessThan(100);
    expect(await cachedValues()).toEqual([]);
  });

  it('completes a result under the limit but keeps only small results in the invocation cache', async () => {
    const mid = await invoke({ s: 'b'.repeat(2000) }); // ~20 KB: stored, not cached
    expect(mid.body).toMatchObject({ state: 'completed', result: { cached: false } });
    const small = await invoke({ s: 'c' }); // cached
    expect(small.body).toMatchObject({ state: 'completed', result: { cached: false } });
    await waitFor(async () => (await cachedValues()).length === 1);
    expect(await cachedValues()).toEqual([JSON.stringify(Array(10).fill('c'))]);
    expect((await invoke({ s: 'c' })).body.result.cached).toBe(true);
    expect((await invoke({ s: 'b'.repeat(2000) })).body.result.cached).toBe(false);
  });

  it("stores every item of a batch whose results together are many times the worker's answer budget, failing only the items over the limit", async () => {
    // 400 results of ~20 KB: 8 MB, each chunk of 250 over the 4 MiB a task answers at once; every 100th over 64 KiB.
    const s = 'd'.repeat(10_000);
    const invocations = Array.from({ length: 400 }, (_, n) =>
      n % 100 === 99 ? { substrate_id: sevenCopies, parameters: { s } } : { substrate_id: suffixed, parameters: { s, n } },
    );
    const { batch, items } = await runBatch(suite, alice.accessToken, invocations, 60_000);
    expect(batch).toMatchObject({ total: 400, completed: 396, failed: 4 });
    expect(items.map((item) => item.index)).toEqual(invocations.map((_, n) => n));
    for (const item of items) {
      if (item.index % 100 === 99) {
        expect(item).toMatchObject({ state: 'failed', result: null });
        expect(item.error).toMatch(/^result_too_large: the result is 70022 bytes of JSON, over the RESULT_MAX_BYTES limit of 65536 bytes/);
      } else
        expect(item, `item ${item.index}`).toEqual({
          index: item.index,
          state: 'completed',
          result: s + s + String(item.index),
          error: null,
        });
    }
  }, 90_000);
});
