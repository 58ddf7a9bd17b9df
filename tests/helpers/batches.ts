import { expect } from 'vitest';
import { waitFor } from './http.js';
import type { Suite } from './suite.js';

/** A stored batch item as PostgreSQL has it (a string result read as text). */
export interface StoredBatchItem {
  index: number;
  state: string;
  result: string | null;
  error: string | null;
}

/**
 * Submits a batch as `token`'s customer, waits for it to complete, and answers its `GET /batches/:id` body and
 * its items as stored, in index order (read from PostgreSQL: every item, whatever the pages hold).
 */
export async function runBatch(
  suite: Suite,
  token: string,
  invocations: Array<{ substrate_id: string; parameters: Record<string, unknown> }>,
  timeoutMs = 30_000,
): Promise<{ batch: Record<string, unknown>; items: StoredBatchItem[] }> {
  const submitted = await suite.request('POST', '/api/v1/batches', { token, body: { invocations } });
  expect(submitted.status, submitted.text).toBe(202);
  const batchId = submitted.body.id as string;
  const read = () => suite.request('GET', `/api/v1/batches/${batchId}`, { token });
  await waitFor(async () => (await read()).body.state === 'completed', timeoutMs);
  const items = await suite.app.sql<StoredBatchItem>(
    `select index, state, result #>> '{}' as result, error from batch_items where batch_id = $1 order by index`,
    [batchId],
  );
  return { batch: (await read()).body, items };
}
