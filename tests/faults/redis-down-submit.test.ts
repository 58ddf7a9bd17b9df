import { describe, expect, it, onTestFailed } from 'vitest';
import { FaultStack } from './harness/fault-stack.js';
import { report, tally } from './harness/tally.js';

/** Jobs submitted while Redis is down. Scaled to 60 submits (each waits out the 1.5 s enqueue timeout). */
const submits = 60;

describe('Redis down while submitting', () => {
  it('answers 202 from the PostgreSQL outbox, then runs every job exactly once after Redis comes back empty', async () => {
    const stack = await FaultStack.start();
    onTestFailed(() => console.log(stack.logs()));
    try {
      await stack.startWorker();
      const substrateId = await stack.substrate({ expression_type: 'constant', value: 42 });

      await stack.redis.kill();
      const started = performance.now();
      const responses = await Promise.all(
        Array.from({ length: submits }, (_, i) => stack.submit('invoke', { substrate_id: substrateId, parameters: { i } })),
      );
      const submitSeconds = (performance.now() - started) / 1000;
      expect(responses.map((r) => r.status)).toEqual(Array(submits).fill(202));
      const ids = responses.map((r) => r.body.id as string);
      // The row is the outbox: accepted, queued, and Redis holds nothing.
      expect((await stack.jobRows(ids)).every((row) => row.state === 'queued')).toBe(true);

      await stack.redis.start();
      const rows = await stack.waitUntilFinal(ids, 90_000);
      const counts = await tally(stack, ids, () => 42);
      report('redis down while submitting', counts, { 'submit wall time s': submitSeconds.toFixed(1) });
      expect(counts).toMatchObject({ accepted: submits, completed: submits, duplicates: 0, lost: 0, wrongResults: 0 });
      expect(rows.every((row) => row.attempts_made === 1)).toBe(true);
    } finally {
      await stack.close();
    }
  });
});
