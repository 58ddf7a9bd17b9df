import { describe, expect, it, onTestFailed } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { FaultStack } from './harness/fault-stack.js';
import { report, tally } from './harness/tally.js';

/** ~15 ms of CPU per job: the square of a 300-element list, plus x. */
const expression = 'l.map(a, l.filter(b, b < a).size()).size() + x';
const list = Array.from({ length: 300 }, (_, i) => i % 10);
const restarts = 3;
const jobsPerRound = 80;
const submitsWhileDown = 5;
const resumeWithinMs = 60_000;

describe('Redis stopped and restarted empty, three times', () => {
  it('keeps /ready red while Redis is down, resumes within 60 s of each restart, and completes every accepted job once', async () => {
    const stack = await FaultStack.start({ env: { WORKER_CONCURRENCY: '4' } });
    onTestFailed(() => console.log(stack.logs()));
    try {
      const substrateId = await stack.substrate({ expression_type: 'expression', expression });
      const constant = await stack.substrate({ expression_type: 'constant', value: 9 });
      const worker = await stack.startWorker();
      const ids: string[] = [];
      const resumeSeconds: number[] = [];
      const readySeconds: number[] = [];
      let x = 0;

      for (let round = 1; round <= restarts; round++) {
        const batch = await Promise.all(
          Array.from({ length: jobsPerRound }, () =>
            stack.submit('invoke', { substrate_id: substrateId, parameters: { l: list, x: x++ } }),
          ),
        );
        expect(batch.map((r) => r.status)).toEqual(Array(jobsPerRound).fill(202));
        const roundIds = batch.map((r) => r.body.id as string);
        ids.push(...roundIds);
        // Mid-run: some of this round's jobs are done, most are still queued or active.
        await waitFor(async () => (await stack.jobRows(roundIds)).filter((row) => row.state === 'completed').length >= 5, 60_000, 50);

        await stack.redis.kill();
        expect(await waitFor(async () => ((await stack.request('GET', '/api/v1/ready')).status === 503 ? 503 : null), 15_000)).toBe(503);
        const whileDown = await Promise.all(
          Array.from({ length: submitsWhileDown }, () =>
            stack.submit('invoke', { substrate_id: substrateId, parameters: { l: list, x: x++ } }),
          ),
        );
        expect(whileDown.map((r) => r.status)).toEqual(Array(submitsWhileDown).fill(202));
        ids.push(...whileDown.map((r) => r.body.id as string));

        await stack.redis.start();
        const restartedAt = Date.now();
        await waitFor(async () => (await stack.request('GET', '/api/v1/ready')).status === 200, resumeWithinMs, 100);
        readySeconds.push((Date.now() - restartedAt) / 1000);
        await waitFor(
          async () =>
            (await stack.sql<{ n: number }>(`select count(*)::int as n from jobs where finished_at >= $1`, [new Date(restartedAt)]))[0]!.n >
            0,
          resumeWithinMs,
          100,
        );
        resumeSeconds.push((Date.now() - restartedAt) / 1000);
        // The API's job events (QueueEvents) came back too: a Prefer: wait submit answers 200 with the result.
        const waited = await stack.submit('invoke', { substrate_id: constant, parameters: { round } }, { prefer: 'wait=25' });
        expect(waited.status).toBe(200);
        expect(waited.body.result.result).toBe(9);
        ids.push(waited.body.id as string);
      }

      await stack.waitUntilFinal(ids, 120_000);
      const counts = await tally(stack, ids, (row) => {
        const params = (row.payload as { parameters: { x?: number } }).parameters;
        return params.x === undefined ? 9 : list.length + params.x;
      });
      report('redis restarted empty 3 times', counts, {
        'ready again after s': readySeconds.map((s) => s.toFixed(1)).join('/'),
        'first job finished after s': resumeSeconds.map((s) => s.toFixed(1)).join('/'),
      });
      expect(worker.alive).toBe(true);
      expect(stack.api.alive).toBe(true);
      expect(resumeSeconds.every((s) => s * 1000 < resumeWithinMs)).toBe(true);
      expect(counts).toMatchObject({ accepted: ids.length, completed: ids.length, duplicates: 0, lost: 0, wrongResults: 0 });
    } finally {
      await stack.close();
    }
  });
});
