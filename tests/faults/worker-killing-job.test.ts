import { describe, expect, it, onTestFailed } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { FaultStack } from './harness/fault-stack.js';
import { report, tally } from './harness/tally.js';

/** ~4 s of CPU on an idle core, so the test can see the job active and kill its worker each time. */
const slowExpression = 'l.map(a, l.map(b, l.filter(c, c < b).size()).size()).size() + x';
const slowList = Array.from({ length: 250 }, (_, i) => i % 10);
const maxStalledCount = 2;

describe('a job that kills its worker every time', () => {
  it(`ends failed with a stalled reason after ${maxStalledCount + 1} dead workers, and is not retried again`, async () => {
    const stack = await FaultStack.start({
      env: {
        WORKER_LOCK_DURATION_MS: '2000',
        WORKER_STALLED_INTERVAL_MS: '1000',
        WORKER_MAX_STALLED_COUNT: String(maxStalledCount),
        TASK_TIMEOUT_MS: '60000',
      },
    });
    onTestFailed(() => console.log(stack.logs()));
    try {
      const slow = await stack.substrate({ expression_type: 'expression', expression: slowExpression });
      const constant = await stack.substrate({ expression_type: 'constant', value: 5 });
      const killer = await stack.submit('invoke', { substrate_id: slow, parameters: { l: slowList, x: 1 } });
      expect(killer.status).toBe(202);
      const killerId = killer.body.id as string;
      const jobKey = stack.bullJobKey('invoke', killerId);

      // Each time a worker holds the job (active and locked in BullMQ, the previous worker's stall counted,
      // its processor started: the row is active), SIGKILL it.
      let worker = await stack.startWorker();
      for (let kill = 1; kill <= maxStalledCount + 1; kill++) {
        await waitFor(
          async () => {
            const [active, locked, stalls, rows] = await Promise.all([
              stack.bullActive('invoke'),
              stack.inspector.exists(`${jobKey}:lock`),
              stack.inspector.hget(jobKey, 'stc'),
              stack.jobRows([killerId]),
            ]);
            return active.includes(killerId) && locked === 1 && Number(stalls ?? 0) === kill - 1 && rows[0]?.state === 'active';
          },
          60_000,
          50,
        );
        await worker.kill();
        worker = await stack.startWorker();
      }

      // The next worker to take it fails it at once; other work goes on.
      const bystanders = await Promise.all(
        Array.from({ length: 10 }, (_, i) => stack.submit('invoke', { substrate_id: constant, parameters: { i } })),
      );
      const bystanderIds = bystanders.map((r) => r.body.id as string);
      const [row] = await stack.waitUntilFinal([killerId], 60_000);
      await stack.waitUntilFinal(bystanderIds, 60_000);
      const bullState = await waitFor(async () => ((await stack.bullFailed('invoke', killerId)) ? 'failed' : null), 10_000);
      const starts = Number(await stack.inspector.hget(jobKey, 'ats'));
      const counts = await tally(stack, [killerId, ...bystanderIds], (r) => (r.id === killerId ? undefined : 5));
      report('job that kills its worker every time', counts, { 'workers killed': maxStalledCount + 1, 'BullMQ starts': starts });

      expect(row).toMatchObject({ state: 'failed' });
      expect(row!.error).toMatch(/stalled/);
      expect(bullState).toBe('failed');
      // Taken by the three killed workers and by the one that failed it; never again.
      expect(starts).toBe(maxStalledCount + 2);
      expect(counts).toMatchObject({ accepted: 11, completed: 10, failed: 1, duplicates: 0, lost: 0, wrongResults: 0 });
    } finally {
      await stack.close();
    }
  });
});
