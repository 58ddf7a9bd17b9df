import { describe, expect, it, onTestFailed } from 'vitest';
import { FaultStack } from './harness/fault-stack.js';
import { report, tally } from './harness/tally.js';

const distinctSubmits = 500;
const sameKeySubmits = 20;

describe('load held', () => {
  it('takes 500 concurrent submits with distinct Idempotency-Keys and 20 of one key: one job for the shared key, every accepted job completed once', async () => {
    // Two worker processes, as a deployment runs them (they share the sweeper lock).
    const stack = await FaultStack.start({ env: { WORKER_CONCURRENCY: '32' } });
    onTestFailed(() => console.log(stack.logs()));
    try {
      const substrateId = await stack.substrate({ expression_type: 'constant', value: 3 });
      await Promise.all([stack.startWorker(), stack.startWorker()]);
      const sharedBody = { substrate_id: substrateId, parameters: { shared: true } };

      const started = performance.now();
      const [distinct, shared] = await Promise.all([
        Promise.all(
          Array.from({ length: distinctSubmits }, (_, i) =>
            stack.submit('invoke', { substrate_id: substrateId, parameters: { i } }, { 'idempotency-key': `load-${i}` }),
          ),
        ),
        Promise.all(Array.from({ length: sameKeySubmits }, () => stack.submit('invoke', sharedBody, { 'idempotency-key': 'load-shared' }))),
      ]);
      const submitSeconds = (performance.now() - started) / 1000;

      expect(distinct.map((r) => r.status)).toEqual(Array(distinctSubmits).fill(202));
      // A replay answers with the one job as it is by then: 202 while it runs, 200 once it has finished.
      expect(shared.every((r) => r.status === 202 || r.status === 200)).toBe(true);
      const sharedIds = new Set(shared.map((r) => r.body.id as string));
      expect(sharedIds.size).toBe(1);
      const sharedRows = (
        await stack.sql<{ rows: number }>(`select count(*)::int as rows from jobs where idempotency_key = 'load-shared'`)
      )[0]?.rows;
      expect(sharedRows).toBe(1);

      const ids = [...distinct.map((r) => r.body.id as string), ...sharedIds];
      await stack.waitUntilFinal(ids, 120_000);
      const allRows = (await stack.sql<{ rows: number }>(`select count(*)::int as rows from jobs`))[0]?.rows ?? 0;
      const counts = await tally(stack, ids, () => 3);
      report('load held: 500 distinct keys + 20 of one key', counts, {
        'submit wall time s': submitSeconds.toFixed(1),
        'job rows': allRows,
        'ids for the shared key': sharedIds.size,
        'shared-key answers 202/200': `${shared.filter((r) => r.status === 202).length}/${shared.filter((r) => r.status === 200).length}`,
      });
      expect(allRows).toBe(distinctSubmits + 1);
      expect(counts).toMatchObject({
        accepted: distinctSubmits + 1,
        completed: distinctSubmits + 1,
        duplicates: 0,
        lost: 0,
        wrongResults: 0,
      });
    } finally {
      await stack.close();
    }
  });
});
