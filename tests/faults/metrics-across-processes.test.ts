import { describe, expect, it, onTestFailed } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { FaultStack } from './harness/fault-stack.js';

/**
 * SPEC §5's one `GET /metrics` with the API and the workers in processes of their own, as `npm start` runs them:
 * the workers' job series reach it through their snapshots in Redis (lib/metrics/snapshots.ts).
 */
describe('metrics across processes', () => {
  it("shows a worker process's job series on the API's /metrics, labelled with its process", async () => {
    const stack = await FaultStack.start({ env: { WORKER_METRICS_PUBLISH_MS: '300' } });
    onTestFailed(() => console.log(stack.logs()));
    try {
      await stack.startWorker();
      const substrate = await stack.substrate({ expression_type: 'expression', expression: 'x * 2' });
      const waited = await stack.submit('invoke', { substrate_id: substrate, parameters: { x: 21 } }, { prefer: 'wait=20' });
      expect(waited.status).toBe(200);
      const jobSeries = await waitFor(async () => {
        const scraped = await stack.request('GET', '/api/v1/metrics', { token: stack.metricsToken });
        const line = scraped.text.split('\n').find((text) => text.startsWith('chrysalis_jobs_total{') && text.includes('type="invoke"'));
        return line ?? null;
      }, 20_000);
      expect(jobSeries).toMatch(/outcome="completed".*process="[^"]+"|process="[^"]+".*outcome="completed"/);
      expect(Number(jobSeries.split(' ').at(-1))).toBeGreaterThanOrEqual(1);
    } finally {
      await stack.close();
    }
  }, 120_000);
});
