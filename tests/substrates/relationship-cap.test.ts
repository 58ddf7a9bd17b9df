import { describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';

// A starter customer keeps at most 3 relationships here, a pro one 5.
const suite = useTestApp({ users: 2, env: { TIER_MAX_RELATIONSHIPS: 'starter=3,pro=5' } });
const alice = () => suite.users[0] as TestUser;
const bob = () => suite.users[1] as TestUser;
const request: typeof suite.request = (...args) => suite.request(...args);

const substrateOf = async (user: TestUser, value: number) =>
  (await request('POST', '/api/v1/substrates', { token: user.accessToken, body: { expression_type: 'constant', value } })).body
    .substrate_id as string;
const relate = (user: TestUser, source: string, target: string, type = 'DEPENDENCY') =>
  request('POST', '/api/v1/relationships', { token: user.accessToken, body: { source_id: source, target_id: target, type } });
const customerOf = async (user: TestUser) =>
  (await request('GET', '/api/v1/auth/me', { token: user.accessToken })).body.customer_id as string;
const storedCount = async (user: TestUser) =>
  Number(
    (await suite.app.sql<{ n: string }>(`select count(*) as n from relationships where customer_id = $1`, [await customerOf(user)]))[0]!.n,
  );

describe('the cap of relationships a customer keeps (TIER_MAX_RELATIONSHIPS)', () => {
  it('refuses one past it with 422 naming body, storing nothing; re-creating one it has still answers 200', async () => {
    const [a, b, c] = [await substrateOf(alice(), 1), await substrateOf(alice(), 2), await substrateOf(alice(), 3)];
    for (const [source, target] of [
      [a, b],
      [b, c],
      [a, c],
    ]) {
      expect((await relate(alice(), source!, target!)).status).toBe(201);
    }
    const refused = await relate(alice(), c, a);
    expectProblem(refused, 422, 'unprocessable', ['body']);
    expect(refused.body).toMatchObject({ cap: 'relationships', limit: 3, count: 3, requested: 1 });
    expect(refused.body.detail).toMatch(/at most 3 relationships; it has 3 and this would add 1 \(delete some first\)/);
    expect(await storedCount(alice())).toBe(3);
    expect((await relate(alice(), a, b)).status).toBe(200);
  });

  it('still answers 404 naming the field for a substrate that is not the caller’s, at the cap too', async () => {
    const [a] = [await substrateOf(alice(), 1)];
    const missing = await relate(alice(), a, '0x00000000000000ff');
    expectProblem(missing, 404, 'not-found', ['body.target_id']);
    // Another customer's substrate is as missing as one that does not exist, at the cap too, and nothing is stored.
    const bobs = await substrateOf(bob(), 9);
    expectProblem(await relate(alice(), a, bobs), 404, 'not-found', ['body.target_id']);
    expectProblem(await relate(alice(), bobs, a), 404, 'not-found', ['body.source_id']);
    expect(await storedCount(alice())).toBe(3);
    expect(await storedCount(bob())).toBe(0);
  });

  it('makes room when a relationship is deleted, and when a substrate is (its relationships go with it)', async () => {
    const [a, b] = [await substrateOf(alice(), 1), await substrateOf(alice(), 2)];
    const listed = await request('GET', `/api/v1/relationships/outgoing/${a}`, { token: alice().accessToken });
    const first = (listed.body.items as Array<{ id: string; target_id: string }>).find((edge) => edge.target_id === b)!;
    expect((await request('DELETE', `/api/v1/relationships/${first.id}`, { token: alice().accessToken })).status).toBe(204);
    const c = await substrateOf(alice(), 3);
    expect((await relate(alice(), c, a)).status).toBe(201);
    expectProblem(await relate(alice(), c, a, 'REFERENCE'), 422, 'unprocessable', ['body']);

    // Left: a → c, b → c, c → a. Substrate 3 ends all three: deleting it frees every place.
    expect((await request('DELETE', `/api/v1/substrates/${c}`, { token: alice().accessToken })).status).toBe(204);
    expect(await storedCount(alice())).toBe(0);
    const d = await substrateOf(alice(), 4);
    for (const type of ['DEPENDENCY', 'REFERENCE', 'CUSTOM']) expect((await relate(alice(), a, d, type)).status).toBe(201);
    expectProblem(await relate(alice(), d, a), 422, 'unprocessable', ['body']);
  });

  it("is each customer's own, follows the tier, and lets no burst of concurrent creates past it", async () => {
    const ends = await Promise.all([1, 2, 3, 4].map((value) => substrateOf(bob(), value)));
    const pairs = ends.flatMap((source) => ends.filter((target) => target !== source).map((target) => [source, target] as const));
    const answers = await Promise.all(pairs.slice(0, 8).map(([source, target]) => relate(bob(), source, target)));
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(3);
    expect(answers.filter((answer) => answer.status === 422)).toHaveLength(5);
    expect(await storedCount(bob())).toBe(3);

    await suite.app.sql(`update service_instances set tier = 'pro' where customer_id = $1`, [await customerOf(bob())]);
    await suite.app.deps.principals.invalidateCustomer(await customerOf(bob()));
    const more = await Promise.all(pairs.slice(8, 11).map(([source, target]) => relate(bob(), source, target)));
    // Sent together: which one finds the cap reached is the lock's order, not the request's.
    expect(more.map((answer) => answer.status).sort()).toEqual([201, 201, 422]);
    expect(await storedCount(bob())).toBe(5);
  });
});
