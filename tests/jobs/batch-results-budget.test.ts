import { beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import { runBatch } from '../helpers/batches.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

/**
 * A batch's expressions decide how much it stores: 10,000 items of up to RESULT_MAX_BYTES each would be 10 GB
 * in PostgreSQL from one request. BATCH_RESULTS_MAX_BYTES bounds a batch's stored results; past it, each
 * further item fails alone with result_too_large and the batch still completes.
 */
const budgetBytes = 200_000;
const suite = useTestApp({ workers: true, users: 1, env: { BATCH_RESULTS_MAX_BYTES: String(budgetBytes) } });
let alice: TestUser;
let doubled: string;

beforeAll(async () => {
  alice = suite.users[0] as TestUser;
  doubled = await createExpressionSubstrate(suite.request, alice.accessToken, 's + s + string(n)');
});

describe("a batch's stored results", () => {
  it('stores results up to BATCH_RESULTS_MAX_BYTES, then fails each further item with result_too_large', async () => {
    // 100 results of 5,003 bytes of JSON: 500 KB, of which the first 39 (195,117 bytes) fit.
    const s = 'e'.repeat(2_500);
    const { batch, items } = await runBatch(
      suite,
      alice.accessToken,
      Array.from({ length: 100 }, (_, n) => ({ substrate_id: doubled, parameters: { s, n } })),
    );
    expect(batch).toMatchObject({ state: 'completed', total: 100, completed: 39, failed: 61 });
    expect(items).toHaveLength(100);
    for (const item of items.slice(0, 39))
      expect(item).toEqual({ index: item.index, state: 'completed', result: s + s + String(item.index), error: null });
    for (const item of items.slice(39))
      expect(item).toEqual({
        index: item.index,
        state: 'failed',
        result: null,
        error: `result_too_large: the batch's results reached the BATCH_RESULTS_MAX_BYTES limit of ${budgetBytes} bytes before this item's`,
      });
  });

  it('completes every item of a batch whose results fit', async () => {
    const { batch, items } = await runBatch(
      suite,
      alice.accessToken,
      Array.from({ length: 100 }, (_, n) => ({ substrate_id: doubled, parameters: { s: 'f', n } })),
    );
    expect(batch).toMatchObject({ state: 'completed', total: 100, completed: 100, failed: 0 });
    expect(items.map((item) => item.result)).toEqual(Array.from({ length: 100 }, (_, n) => `ff${n}`));
  });
});
