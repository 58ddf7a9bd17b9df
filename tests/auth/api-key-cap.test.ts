import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { insertApiKeyWithinCap } from '../../db/repositories/api-keys.js';
import { inTransaction } from '../../db/transaction.js';
import type { TestUser } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';
import { expectProblem } from './expect-problem.js';

// A starter customer holds at most 3 live API keys here, a pro one 5.
const suite = useTestApp({ users: 3, env: { TIER_MAX_API_KEYS: 'starter=3,pro=5' } });
const alice = () => suite.users[0] as TestUser;
const bob = () => suite.users[1] as TestUser;
const carol = () => suite.users[2] as TestUser;
const request: typeof suite.request = (...args) => suite.request(...args);

const createKey = (user: TestUser, name = 'ci', extra: Record<string, unknown> = {}) =>
  request('POST', '/api/v1/api-keys', { token: user.accessToken, body: { name, service_type: 'compute', ...extra } });
const liveKeys = async (user: TestUser) => {
  const listed = await request('GET', '/api/v1/api-keys?limit=100', { token: user.accessToken });
  return (listed.body.items as Array<{ id: string; name: string; revoked_at?: string | null }>).filter((key) => !key.revoked_at);
};
const customerOf = async (user: TestUser) =>
  (await request('GET', '/api/v1/auth/me', { token: user.accessToken })).body.customer_id as string;

describe('the cap of live API keys a customer holds (TIER_MAX_API_KEYS)', () => {
  it('refuses one key past it with 422 naming body, storing nothing; a revoked key makes room', async () => {
    for (const name of ['a', 'b', 'c']) expect((await createKey(alice(), name)).status).toBe(201);
    const refused = await createKey(alice(), 'd');
    expectProblem(refused, 422, 'unprocessable', ['body']);
    expect(refused.body).toMatchObject({ cap: 'api_keys', limit: 3, count: 3, requested: 1 });
    expect(refused.body.detail).toMatch(/at most 3 live API keys; it has 3 and this would add 1 \(revoke one first\)/);
    expect(refused.body.key).toBeUndefined();
    expect((await liveKeys(alice())).map((key) => key.name).sort()).toEqual(['a', 'b', 'c']);

    const [first] = await liveKeys(alice());
    expect((await request('DELETE', `/api/v1/api-keys/${first!.id}`, { token: alice().accessToken })).status).toBe(204);
    expect((await createKey(alice(), 'd')).status).toBe(201);
    expectProblem(await createKey(alice(), 'e'), 422, 'unprocessable', ['body']);
  });

  it('still checks the body first: a bad body at the cap answers 400 naming its field', async () => {
    const bad = await request('POST', '/api/v1/api-keys', {
      token: alice().accessToken,
      body: { name: 'x', service_type: 'compute', extra: 1 },
    });
    expectProblem(bad, 400, 'validation', ['body.extra']);
  });

  it('rotates a live key at the cap (the old one gives its room to the new one)', async () => {
    const [old] = await liveKeys(alice());
    const rotated = await request('POST', `/api/v1/api-keys/${old!.id}/rotate`, { token: alice().accessToken, body: {} });
    expect(rotated.status, rotated.text).toBe(201);
    expect(rotated.body.rotated_from).toBe(old!.id);
    expect((await liveKeys(alice())).length).toBe(3);
  });

  it('gives an expired key no room, so rotating one at the cap is refused and leaves the old key as it was', async () => {
    const [expiring] = await liveKeys(alice());
    await suite.app.sql(`update api_keys set expires_at = now() - interval '1 minute' where id = $1`, [expiring!.id]);
    // Two live keys left: a new one fits.
    expect((await createKey(alice(), 'f')).status).toBe(201);
    const refused = await request('POST', `/api/v1/api-keys/${expiring!.id}/rotate`, {
      token: alice().accessToken,
      body: { expires_at: new Date(Date.now() + 3600_000).toISOString() },
    });
    expectProblem(refused, 422, 'unprocessable', ['body']);
    expect(refused.body).toMatchObject({ cap: 'api_keys', limit: 3, count: 3 });
    const [row] = await suite.app.sql<{ revoked_at: Date | null }>(`select revoked_at from api_keys where id = $1`, [expiring!.id]);
    expect(row!.revoked_at).toBeNull();
  });

  it("is each customer's own, and follows the tier", async () => {
    for (const name of ['a', 'b', 'c']) expect((await createKey(bob(), name)).status).toBe(201);
    await suite.app.sql(`update service_instances set tier = 'pro' where customer_id = $1`, [await customerOf(bob())]);
    await suite.app.deps.principals.invalidateCustomer(await customerOf(bob()));
    for (const name of ['d', 'e']) expect((await createKey(bob(), name)).status).toBe(201);
    expectProblem(await createKey(bob(), 'f'), 422, 'unprocessable', ['body']);
    expect((await liveKeys(bob())).length).toBe(5);
  });

  it('lets no burst of concurrent creates past it', async () => {
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => createKey(carol(), `burst-${i}`)));
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 201, 201, 422, 422, 422, 422, 422]);
    expect((await liveKeys(carol())).length).toBe(3);
  });

  it('makes a create wait for an uncommitted one of the same customer, and then count it', async () => {
    const { orm } = suite.app.deps;
    const customerId = await customerOf(carol()); // 3 live keys
    const keyRow = (name: string) => ({
      customerId,
      name,
      serviceType: 'compute',
      prefix: 'sk_live_test',
      keyHash: randomUUID(),
      encryptedKey: 'sealed',
      expiresAt: null,
    });
    let releaseFirst = () => {};
    const firstHolds = new Promise<void>((resolve) => (releaseFirst = resolve));
    const first = inTransaction(orm.em.fork(), async (tx) => {
      const row = await insertApiKeyWithinCap(tx, keyRow('first'), 4);
      await firstHolds;
      return row;
    });
    await sleep(100);
    const second = inTransaction(orm.em.fork(), (tx) => insertApiKeyWithinCap(tx, keyRow('second'), 4));
    await sleep(200);
    releaseFirst();
    expect('capReached' in (await first)).toBe(false);
    expect(await second).toEqual({ capReached: { cap: 4, had: 4, adding: 1 } });
  });
});
