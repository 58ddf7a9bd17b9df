import type { ChrysalisClient } from './client.js';
import { unwrap } from './client.js';
import { sleep } from './sleep.js';
import { isFinal, type Batch, type BatchInvocation } from './types.js';

/** Most invocations one `POST /batches` takes. */
export const maxBatchSize = 10_000;

export interface BatchProgress {
  total: number;
  completed: number;
  failed: number;
}

export interface BatchOptions {
  /** Called whenever the counts move (and once at the start with zeros). */
  onProgress?: (progress: BatchProgress) => void;
  /** Pause between progress polls, in ms. Default 500. */
  pollMs?: number;
  /** Failed items to fetch for the outcome (they are listed, never all read). Default 100. */
  maxFailedItems?: number;
  signal?: AbortSignal;
}

export interface FailedBatchItem {
  /** Position in the invocations given to `batch()`, from 0 (across all the batches it made). */
  index: number;
  substrate_id: string;
  error: string;
}

export interface BatchOutcome extends BatchProgress {
  /** The batches submitted (one per 10,000 invocations), as last read. */
  batches: Batch[];
  /** Up to `maxFailedItems` of the failed items, in submission order. */
  failedItems: FailedBatchItem[];
}

/** Submits the invocations as batches of ≤ 10,000, reports progress until every batch is final, lists failures. */
export async function runBatch(client: ChrysalisClient, invocations: BatchInvocation[], options: BatchOptions = {}): Promise<BatchOutcome> {
  const submitted: Array<{ id: string; offset: number }> = [];
  for (let offset = 0; offset < invocations.length; offset += maxBatchSize) {
    const accepted = await unwrap(
      client.api.POST('/batches', { body: { invocations: invocations.slice(offset, offset + maxBatchSize) }, signal: options.signal }),
    );
    submitted.push({ id: accepted.id, offset });
  }
  let batches: Batch[] = [];
  let last = '';
  const report = (progress: BatchProgress) => {
    const key = `${progress.completed}/${progress.failed}`;
    if (key !== last) options.onProgress?.(progress);
    last = key;
  };
  report({ total: invocations.length, completed: 0, failed: 0 });
  for (;;) {
    batches = await Promise.all(
      submitted.map(({ id }) => unwrap(client.api.GET('/batches/{id}', { params: { path: { id } }, signal: options.signal }))),
    );
    const progress = { total: invocations.length, completed: sum(batches, 'completed'), failed: sum(batches, 'failed') };
    report(progress);
    if (batches.every((batch) => isFinal(batch.state))) break;
    await sleep(options.pollMs ?? 500, options.signal);
  }
  const failedItems: FailedBatchItem[] = [];
  const limit = options.maxFailedItems ?? 100;
  for (const [position, batch] of batches.entries()) {
    let cursor: string | undefined;
    while (batch.failed > 0 && failedItems.length < limit) {
      const query = { state: 'failed' as const, limit: Math.min(100, limit - failedItems.length), ...(cursor ? { cursor } : {}) };
      const page = await unwrap(
        client.api.GET('/batches/{id}/items', { params: { path: { id: batch.id }, query }, signal: options.signal }),
      );
      for (const item of page.items)
        failedItems.push({
          index: submitted[position]!.offset + item.index,
          substrate_id: item.substrate_id,
          error: item.error ?? 'failed',
        });
      cursor = page.next_cursor ?? undefined;
      if (!cursor) break;
    }
  }
  return { total: invocations.length, completed: sum(batches, 'completed'), failed: sum(batches, 'failed'), batches, failedItems };
}

const sum = (batches: Batch[], key: 'completed' | 'failed') => batches.reduce((total, batch) => total + batch[key], 0);
