import { describe, expect, it, onTestFailed } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { FaultStack, type JobRow } from './harness/fault-stack.js';
import { runEveryJobAgain } from './harness/rerun.js';
import { report, tally } from './harness/tally.js';

/** ~2 s of CPU per job in Piscina on an idle core: the cube of a 200-element list. */
const slowExpression = 'l.map(a, l.map(b, l.filter(c, c < b).size()).size()).size() + x';
const slowList = Array.from({ length: 200 }, (_, i) => i % 10);
/** ~15 ms per batch item: the square of a 300-element list. */
const itemExpression = 'l.map(a, l.filter(b, b < a).size()).size() + x';
const itemList = Array.from({ length: 300 }, (_, i) => i % 10);
const slowJobs = 6;

/** An invoke's stored `result.result`: the list's length plus its `x` (batches are checked item by item). */
function expectedResult(row: JobRow): unknown {
  return row.type === 'invoke' ? slowList.length + (row.payload as { parameters: { x: number } }).parameters.x : undefined;
}
const batchSize = 600;

describe('worker SIGKILLed mid-job', () => {
  it('reruns the jobs it held on another worker and writes each result once, even when every job then runs a second time', async () => {
    // BullMQ's own stalled-job tests use short locks; so do we (defaults: 30 s / 30 s).
    const stack = await FaultStack.start({
      env: {
        WORKER_LOCK_DURATION_MS: '2000',
        WORKER_STALLED_INTERVAL_MS: '1000',
        TASK_TIMEOUT_MS: '60000',
        PISCINA_THREADS: '2',
        WORKER_CONCURRENCY: '4',
        // The rerun below takes each finished job back out of BullMQ, so finished jobs stay there (no durable-completion trim).
        FINISHED_JOB_TRIM_INTERVAL_MS: '0',
      },
    });
    onTestFailed(() => console.log(stack.logs()));
    try {
      const slow = await stack.substrate({ expression_type: 'expression', expression: slowExpression });
      const item = await stack.substrate({ expression_type: 'expression', expression: itemExpression });
      const first = await stack.startWorker();

      const batch = await stack.request('POST', '/api/v1/batches', {
        token: stack.user.accessToken,
        body: { invocations: Array.from({ length: batchSize }, (_, x) => ({ substrate_id: item, parameters: { l: itemList, x } })) },
      });
      expect(batch.status).toBe(202);
      const batchId = batch.body.id as string;
      const storedItems = async () =>
        (await stack.sql<{ items: number }>(`select count(*)::int as items from batch_items where batch_id = $1`, [batchId]))[0]!.items;
      // The slow invokes go in once the batch has stored its first chunk: submitted together, the pool would run
      // them first and the batch's chunks after, leaving no moment with both in flight on a loaded machine.
      await waitFor(async () => (await storedItems()) > 0, 60_000, 50);
      const submitted = await Promise.all(
        Array.from({ length: slowJobs }, (_, x) => stack.submit('invoke', { substrate_id: slow, parameters: { l: slowList, x } })),
      );
      expect(submitted.map((r) => r.status)).toEqual(Array(slowJobs).fill(202));
      const invokeIds = submitted.map((r) => r.body.id as string);

      // Kill it while it holds at least two slow jobs and the batch, part of whose items are stored.
      const heldAtKill = await waitFor(
        async () => {
          const active = [...(await stack.bullActive('invoke')), ...(await stack.bullActive('batch'))];
          if (!active.includes(batchId) || active.length < 3) return null;
          const stored = await storedItems();
          return stored > 0 && stored < batchSize ? active : null;
        },
        60_000,
        50,
      );
      await first.kill();
      const itemsAtKill = await storedItems();
      await stack.startWorker();

      const ids = [batchId, ...invokeIds];
      await stack.waitUntilFinal(ids, 120_000);
      // Every job the killed worker held ran again (BullMQ counts the stall on the job).
      const stalls = await Promise.all(
        heldAtKill.map(async (id) =>
          Number((await stack.inspector.hget(stack.bullJobKey(id === batchId ? 'batch' : 'invoke', id), 'stc')) ?? 0),
        ),
      );
      const afterKill = await tally(stack, ids, expectedResult);

      await runEveryJobAgain(stack, [{ id: batchId, type: 'batch' }, ...invokeIds.map((id) => ({ id, type: 'invoke' }))], 120_000);
      const counts = await tally(stack, ids, expectedResult);
      const items = await stack.sql<{ index: number; state: string; result: number }>(
        `select index, state, result from batch_items where batch_id = $1 order by index`,
        [batchId],
      );
      const invokeRows = await stack.jobRows(invokeIds);

      report('worker SIGKILLed mid-job, then every job run twice', counts, {
        'held at kill': heldAtKill.length,
        'batch items stored at kill': itemsAtKill,
      });
      expect(stalls.every((count) => count >= 1)).toBe(true);
      expect(afterKill).toMatchObject({ accepted: ids.length, completed: ids.length, duplicates: 0, lost: 0, wrongResults: 0 });
      expect(counts).toMatchObject({ accepted: ids.length, completed: ids.length, duplicates: 0, lost: 0, wrongResults: 0 });
      expect(items).toHaveLength(batchSize);
      expect(items.every((row, index) => row.index === index && row.state === 'completed' && row.result === itemList.length + index)).toBe(
        true,
      );
      // A stall is not a failed attempt: the rerun is still attempt 1.
      expect(invokeRows.every((row) => row.attempts_made === 1)).toBe(true);
    } finally {
      await stack.close();
    }
  });
});
