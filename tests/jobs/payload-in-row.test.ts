import { beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import { bullJob } from '../helpers/queues.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { inlinePayloadMaxBytes } from '../../queue/queues.js';

// FIFO: the test reads what each job's BullMQ data carries (fair sharing holds a backlog in lanes, without payloads).
const suite = useTestApp({ workers: true, users: 1, env: { FAIR_SHARING: 'false' } });
let alice: TestUser;
let substrateId: string;

beforeAll(async () => {
  alice = suite.users[0] as TestUser;
  substrateId = await createExpressionSubstrate(suite.request, alice.accessToken, 'size(s) + x');
});

const submit = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  suite.request('POST', '/api/v1/jobs', { token: alice.accessToken, headers, body });

/** A batch whose payload is about `bytes` of JSON. */
const batchOf = (items: number, textLength: number) => ({
  invocations: Array.from({ length: items }, (_, x) => ({ substrate_id: substrateId, parameters: { s: 'q'.repeat(textLength), x } })),
});

describe('payloads too big to carry in Redis', () => {
  it('keeps a big payload in its row only, and a small one in its BullMQ job', async () => {
    const big = await submit({ type: 'batch', payload: batchOf(200, 100), delay_ms: 3_600_000 });
    const small = await submit({
      type: 'invoke',
      payload: { substrate_id: substrateId, parameters: { s: 'q', x: 1 } },
      delay_ms: 3_600_000,
    });
    expect([big.status, small.status]).toEqual([202, 202]);
    // The adds follow the 202s (queue/pending-enqueues.ts): read BullMQ once they are in.
    await suite.app.deps.pendingEnqueues.drain();

    const bigData = (await bullJob(suite.app.deps.queues, 'batch', big.body.id))?.data;
    expect(bigData).toMatchObject({ payloadInRow: true });
    expect(bigData).not.toHaveProperty('payload');
    expect(JSON.stringify(bigData).length).toBeLessThan(500);
    const smallData = (await bullJob(suite.app.deps.queues, 'invoke', small.body.id))?.data;
    expect(smallData?.payload).toEqual({ substrate_id: substrateId, parameters: { s: 'q', x: 1 } });
    expect(smallData).not.toHaveProperty('payloadInRow');

    // The client still reads the whole payload back.
    const read = await suite.request('GET', `/api/v1/jobs/${big.body.id}?include=payload`, { token: alice.accessToken });
    expect(read.body.payload.invocations).toHaveLength(200);
    for (const { body } of [big, small]) await suite.request('POST', `/api/v1/jobs/${body.id}/cancel`, { token: alice.accessToken });
  });

  it('runs a job whose payload is in its row as if it had carried it', async () => {
    const text = 'z'.repeat(inlinePayloadMaxBytes + 100);
    const answer = await submit(
      { type: 'invoke', payload: { substrate_id: substrateId, parameters: { s: text, x: 2 } } },
      { prefer: 'wait=20' },
    );
    expect(answer.body).toMatchObject({ state: 'completed', result: { result: text.length + 2 } });

    const batch = await submit({ type: 'batch', payload: batchOf(200, 100) }, { prefer: 'wait=30' });
    expect(batch.body).toMatchObject({ state: 'completed', result: { total: 200, completed: 200, failed: 0 } });
  });
});
