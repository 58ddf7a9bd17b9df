import { beforeAll, describe, expect, it } from 'vitest';
import { getJobDefinition } from '../../jobs/registry.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import type { TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

const suite = useTestApp({ workers: true, users: 1 });
let alice: TestUser;
let substrateId: string;
let customerId: string;

beforeAll(async () => {
  alice = suite.users[0] as TestUser;
  substrateId = await createExpressionSubstrate(suite.request, alice.accessToken, 'x * y');
  customerId = (await suite.request('GET', '/api/v1/auth/me', { token: alice.accessToken })).body.customer_id;
});

const invoke = getJobDefinition('invoke')!;

async function submit(payloads: unknown[]): Promise<string[]> {
  const { deps } = suite.app;
  return submitJobsBulk({ em: deps.orm.em, queues: deps.queues, logger: deps.logger, cache: deps.cache }, customerId, invoke, payloads);
}

async function finished(ids: string[]) {
  let rows: Array<{ id: string; state: string; result: { result: unknown; cached: boolean } | null; error: string | null }> = [];
  await waitFor(async () => {
    rows = await suite.app.sql(`select id, state, result, error from jobs where id = any($1::uuid[])`, [ids]);
    return rows.every((row) => row.state === 'completed' || row.state === 'failed');
  }, 30_000);
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => byId.get(id)!);
}

describe('bulk submit', () => {
  it('runs 2,500 invokes (three INSERT chunks) and stores every result in order of submission', async () => {
    const ids = await submit(Array.from({ length: 2500 }, (_, i) => ({ substrate_id: substrateId, parameters: { x: i, y: 3 } })));
    expect(new Set(ids).size).toBe(2500);
    const rows = await finished(ids);
    expect(rows.map((row) => row.result?.result)).toEqual(Array.from({ length: 2500 }, (_, i) => i * 3));
    expect(rows.every((row) => row.result?.cached === false)).toBe(true);
  });

  it('serves repeated invocations from the cache and evaluates the new ones in the same chunk', async () => {
    const repeated = Array.from({ length: 50 }, (_, i) => ({ substrate_id: substrateId, parameters: { x: i, y: 3 } }));
    const fresh = Array.from({ length: 50 }, (_, i) => ({ substrate_id: substrateId, parameters: { x: i, y: 1000 } }));
    const rows = await finished(await submit([...repeated, ...fresh]));
    expect(rows.slice(0, 50).map((row) => row.result)).toEqual(
      repeated.map((_, i) => expect.objectContaining({ result: i * 3, cached: true })),
    );
    expect(rows.slice(50).map((row) => row.result)).toEqual(
      fresh.map((_, i) => expect.objectContaining({ result: i * 1000, cached: false })),
    );
  });

  it("submits nothing when one payload breaks the job type's schema, and names it", async () => {
    const before = await suite.app.sql<{ n: string }>('select count(*) as n from jobs');
    await expect(submit([{ substrate_id: substrateId, parameters: { x: 1 } }, { substrate_id: 'not-an-id' }])).rejects.toThrow(
      /payloads\[1\]\.substrate_id/,
    );
    await expect(submit([null])).rejects.toThrow(/payloads\[0\]/);
    await expect(submit([{ substrate_id: substrateId, surprise: true }])).rejects.toThrow(/payloads\[0\]/);
    expect(await suite.app.sql<{ n: string }>('select count(*) as n from jobs')).toEqual(before);
  });

  it('runs payloads the cache cannot answer (operations, multiply) and fails an unknown substrate alone', async () => {
    const rows = await finished(
      await submit([
        { substrate_id: substrateId, parameters: { x: 6, y: 7 }, operation: { op: 'add', value: 1 } },
        { operation: { op: 'multiply', dimension_values: [2, 3, 4] } },
        { substrate_id: '0x0000000000000001', parameters: { x: 1, y: 1 } },
        { substrate_id: substrateId, parameters: { x: 2, y: 2 } },
      ]),
    );
    expect(rows.map((row) => row.state)).toEqual(['completed', 'completed', 'failed', 'completed']);
    expect(rows[0]!.result).toMatchObject({ original_value: 42, new_value: 43 });
    expect(rows[1]!.result).toMatchObject({ unity_value: 24 });
    expect(rows[2]!.error).toMatch(/substrate 0x0000000000000001 not found/);
    expect(rows[3]!.result).toMatchObject({ result: 4 });
  });
});
