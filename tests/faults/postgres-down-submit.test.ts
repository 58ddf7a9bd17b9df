import { describe, expect, it, onTestFailed } from 'vitest';
import { registerUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { FaultStack } from './harness/fault-stack.js';
import { report, tally } from './harness/tally.js';

const submits = 20;

describe('PostgreSQL down while submitting', () => {
  it('answers 503 within 5 s and leaves no BullMQ job in Redis, then accepts again once PostgreSQL is back', async () => {
    const stack = await FaultStack.start();
    onTestFailed(() => console.log(stack.logs()));
    try {
      await stack.startWorker();
      const substrateId = await stack.substrate({ expression_type: 'constant', value: 7 });
      // A second caller who has not called yet: their principal is not cached, so auth itself needs PostgreSQL.
      const uncached = await registerUser(stack.request);
      const keysBefore = new Set(await stack.bullJobKeys());

      await stack.postgres.stop();
      const outcomes = await Promise.all(
        Array.from({ length: submits }, async (_, i) => {
          const started = performance.now();
          const response = await stack.request('POST', '/api/v1/jobs', {
            token: i % 2 === 0 ? stack.user.accessToken : uncached.accessToken,
            body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { i } } },
          });
          return { response, ms: performance.now() - started };
        }),
      );
      const slowest = Math.max(...outcomes.map((o) => o.ms));
      // /ready reuses an answer for up to 1 s: the outage shows within that.
      const ready = await waitFor(async () => {
        const response = await stack.request('GET', '/api/v1/ready');
        return response.status === 503 && response;
      }, 5_000);
      const keysDuring = (await stack.bullJobKeys()).filter((key) => !keysBefore.has(key));

      expect(outcomes.map((o) => o.response.status)).toEqual(Array(submits).fill(503));
      expect(outcomes.every((o) => o.response.headers.get('content-type')?.startsWith('application/problem+json'))).toBe(true);
      expect(slowest).toBeLessThan(5000);
      expect(keysDuring).toEqual([]);
      expect(ready.status).toBe(503);

      // Back up: the same submits are accepted and run once each.
      await stack.postgres.start();
      const retried = await Promise.all(
        Array.from({ length: submits }, (_, i) => stack.submit('invoke', { substrate_id: substrateId, parameters: { i } })),
      );
      expect(retried.map((r) => r.status)).toEqual(Array(submits).fill(202));
      const ids = retried.map((r) => r.body.id as string);
      await stack.waitUntilFinal(ids, 60_000);
      const counts = await tally(stack, ids, () => 7);
      report('postgres down while submitting', counts, {
        'refused 503': submits,
        'slowest 503 ms': Math.round(slowest),
        'BullMQ jobs left by refused submits': keysDuring.length,
      });
      expect(counts).toMatchObject({ accepted: submits, completed: submits, duplicates: 0, lost: 0, wrongResults: 0 });
    } finally {
      await stack.close();
    }
  });
});
