import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { upsertSerialisedSubstrates } from '../../db/repositories/substrate-store.js';
import { inTransaction } from '../../db/transaction.js';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';

// A starter customer keeps at most 5 substrates here, a pro one 8.
const suite = useTestApp({ users: 2, env: { TIER_MAX_SUBSTRATES: 'starter=5,pro=8' } });
/** The suite's two customers, registered before the tests run. */
const alice = () => suite.users[0] as TestUser;
const bob = () => suite.users[1] as TestUser;
const request: typeof suite.request = (...args) => suite.request(...args);

const constant = (value: number) => ({ expression_type: 'constant', value });
const createOne = (user: TestUser, value: number) =>
  request('POST', '/api/v1/substrates', { token: user.accessToken, body: constant(value) });
const createMany = (user: TestUser, values: number[]) =>
  request('POST', '/api/v1/substrates/batch', { token: user.accessToken, body: { substrates: values.map(constant) } });
const listedCount = async (user: TestUser) =>
  ((await request('GET', '/api/v1/substrates?limit=100', { token: user.accessToken })).body.items as unknown[]).length;
const customerOf = async (user: TestUser) =>
  (await request('GET', '/api/v1/auth/me', { token: user.accessToken })).body.customer_id as string;

describe('the cap of substrates a customer keeps (TIER_MAX_SUBSTRATES)', () => {
  it('refuses a batch whose new substrates would pass it with 422 naming body.substrates, storing none of them', async () => {
    expect((await createMany(alice(), [1, 2, 3])).status).toBe(201);
    const refused = await createMany(alice(), [4, 5, 6]);
    expectProblem(refused, 422, 'unprocessable', ['body.substrates']);
    expect(refused.body).toMatchObject({ cap: 'substrates', limit: 5, count: 3, requested: 3 });
    expect(refused.body.detail).toMatch(/at most 5 substrates; it has 3 and this would add 3/);
    expect(await listedCount(alice())).toBe(3);
  });

  it('counts only the new ones: existing substrates in a batch take no room, and a batch that reaches the cap exactly is stored', async () => {
    const reached = await createMany(alice(), [1, 2, 3, 4, 5, 5]);
    expect(reached.status).toBe(201);
    expect(reached.body.created).toBe(2);
    expect(await listedCount(alice())).toBe(5);
    // At the cap, re-creating what it has still answers 200.
    expect((await createMany(alice(), [2, 4])).status).toBe(200);
    expect((await createOne(alice(), 1)).status).toBe(200);
  });

  it('refuses one more single create with 422 naming body, and lets one in again after a delete', async () => {
    const refused = await createOne(alice(), 6);
    expectProblem(refused, 422, 'unprocessable', ['body']);
    expect(refused.body).toMatchObject({ limit: 5, count: 5, requested: 1 });
    const existing = await createOne(alice(), 1);
    const deleted = await request('DELETE', `/api/v1/substrates/${existing.body.substrate_id}`, { token: alice().accessToken });
    expect(deleted.status).toBe(204);
    expect((await createOne(alice(), 6)).status).toBe(201);
    expectProblem(await createOne(alice(), 7), 422, 'unprocessable', ['body']);
  });

  it("is each customer's own: another customer at the same tier still has all of its room", async () => {
    expect((await createMany(bob(), [1, 2, 3, 4, 5])).status).toBe(201);
  });

  it('follows the tier: a pro customer may keep more', async () => {
    await suite.app.sql(`update service_instances set tier = 'pro' where customer_id = $1`, [await customerOf(alice())]);
    await suite.app.deps.principals.invalidateCustomer(await customerOf(alice()));
    expect((await createMany(alice(), [7, 8, 9])).status).toBe(201);
    expectProblem(await createOne(alice(), 10), 422, 'unprocessable', ['body']);
    expect(await listedCount(alice())).toBe(8);
  });

  it('makes a create wait for an uncommitted one of the same customer, and then count what it stored', async () => {
    const { orm } = suite.app.deps;
    const customerId = randomUUID();
    const rowsOf = (values: number[]) => {
      const rows = values.map((value) => ({
        id: `cap-${customerId}-${value}`,
        customerId,
        identity: String(value),
        expressionType: 'constant',
        expression: null,
        value,
        metadata: {},
      }));
      return { json: JSON.stringify(rows), ids: rows.map((row) => row.id) };
    };
    const store = (em: EntityManager, values: number[]) => {
      const { json, ids } = rowsOf(values);
      return upsertSerialisedSubstrates(em, customerId, json, ids, 5);
    };
    expect(await store(orm.em.fork(), [0])).toHaveLength(1);
    let second: ReturnType<typeof store> | undefined;
    await inTransaction(orm.em.fork(), async (tx) => {
      expect(await store(tx, [1, 2])).toHaveLength(2);
      // Started before the first commits: without the count's lock it would see 1 substrate and store 3 more (6 in all).
      second = store(orm.em.fork(), [3, 4, 5]);
      await sleep(300);
    });
    expect(await second).toEqual({ capReached: { cap: 5, had: 3, adding: 3 } });
    const [counted] = await suite.app.sql<{ n: string }>(`select count(*) as n from substrates where customer_id = $1`, [customerId]);
    expect(Number(counted?.n)).toBe(3);
  });
});
