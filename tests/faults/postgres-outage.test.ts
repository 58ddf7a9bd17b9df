import { describe, expect, it, onTestFailed } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { FaultStack } from './harness/fault-stack.js';
import { report, tally } from './harness/tally.js';

/** ~15 ms of CPU per job: the square of a 300-element list, plus x. */
const expression = 'l.map(a, l.filter(b, b < a).size()).size() + x';
const list = Array.from({ length: 300 }, (_, i) => i % 10);
const jobs = 300;
const outageMs = 10_000;

describe('PostgreSQL stopped for 10 s mid-run', () => {
  it('holds results until PostgreSQL is back, never lets BullMQ mark a job completed before its row, and completes every job', async () => {
    const stack = await FaultStack.start({ env: { WORKER_CONCURRENCY: '4' } });
    onTestFailed(() => console.log(stack.logs()));
    try {
      const substrateId = await stack.substrate({ expression_type: 'expression', expression });
      await stack.startWorker();
      const submitted = await Promise.all(
        Array.from({ length: jobs }, (_, x) => stack.submit('invoke', { substrate_id: substrateId, parameters: { l: list, x } })),
      );
      expect(submitted.map((r) => r.status)).toEqual(Array(jobs).fill(202));
      const ids = submitted.map((r) => r.body.id as string);

      await waitFor(
        async () => (await stack.sql<{ n: number }>(`select count(*)::int as n from jobs where state = 'completed'`))[0]!.n >= 30,
        60_000,
        100,
      );
      await stack.postgres.stop();
      const stoppedAt = Date.now();
      // While it is down: /ready goes red, and BullMQ's completed sets are watched.
      const readyDuring = await waitFor(async () => ((await stack.request('GET', '/api/v1/ready')).status === 503 ? 503 : null), outageMs);
      const completedInBullMq = new Set<string>();
      while (Date.now() - stoppedAt < outageMs) {
        for (const id of await stack.bullCompleted('invoke')) completedInBullMq.add(id);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      for (const id of await stack.bullCompleted('invoke')) completedInBullMq.add(id);
      await stack.postgres.start();
      const restartedAt = Date.now();

      const rows = await stack.waitUntilFinal(ids, 120_000);
      const readyAfter = await waitFor(async () => ((await stack.request('GET', '/api/v1/ready')).status === 200 ? 200 : null), 30_000);
      // Every job BullMQ had marked completed by the end of the outage had its row completed before PostgreSQL stopped.
      // A bundle (fair sharing's release carries a customer's jobs it takes together in one) stands for its members.
      const completedJobs = new Set<string>();
      for (const id of completedInBullMq) {
        if (!id.startsWith('bundle-')) completedJobs.add(id);
        else
          for (const member of await stack.sql<{ id: string }>(`select id from jobs where bundle_id = $1`, [id]))
            completedJobs.add(member.id);
      }
      const byId = new Map(rows.map((row) => [row.id, row]));
      const completedWithoutRow = [...completedJobs].filter((id) => {
        const row = byId.get(id);
        return !row || row.state !== 'completed' || !row.finished_at || new Date(row.finished_at).getTime() > stoppedAt;
      });
      const heldThrough = rows.filter((row) => row.finished_at && new Date(row.finished_at).getTime() >= restartedAt).length;
      const counts = await tally(stack, ids, (row) => list.length + (row.payload as { parameters: { x: number } }).parameters.x);
      report('postgres stopped 10 s mid-run', counts, {
        'completed in BullMQ before or during the outage': completedInBullMq.size,
        'of them without a completed row': completedWithoutRow.length,
        'finished after PostgreSQL returned': heldThrough,
        'retried attempts': rows.filter((row) => row.attempts_made > 1).length,
      });

      expect(readyDuring).toBe(503);
      expect(readyAfter).toBe(200);
      expect(completedWithoutRow).toEqual([]);
      expect(heldThrough).toBeGreaterThan(0);
      expect(counts).toMatchObject({ accepted: jobs, completed: jobs, duplicates: 0, lost: 0, wrongResults: 0 });
    } finally {
      await stack.close();
    }
  });
});
