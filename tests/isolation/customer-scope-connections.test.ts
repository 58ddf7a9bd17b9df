import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';

// Creates a per-customer cap counts (relationships, API keys, schedules, webhook endpoints) wait for the customer's
// lock one at a time. A starter may have 10 requests in flight, as many as the API's pooled connections: waiting
// for that lock in a transaction, a burst of them held the whole pool, and every other customer's requests waited.
const suite = useTestApp({ users: 2 });
const alice = () => suite.users[0] as TestUser;
const bob = () => suite.users[1] as TestUser;

const customerOf = async (user: TestUser) =>
  (await suite.request('GET', '/api/v1/auth/me', { token: user.accessToken })).body.customer_id as string;
const substrateOf = async (user: TestUser, value: number) =>
  (await suite.request('POST', '/api/v1/substrates', { token: user.accessToken, body: { expression_type: 'constant', value } })).body
    .substrate_id as string;

/** Sessions of this database waiting for an advisory lock. */
const advisoryWaiters = async () =>
  (
    await suite.app.sql<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'advisory'`,
    )
  )[0]!.n;

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let tries = 0; tries < 200; tries++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`never happened: ${what}`);
}

/**
 * Holds the customer's `scope` lock from a connection of its own while `burst` sends 10 creates; meanwhile counts
 * the API's sessions waiting for it and has bob read; then lets them through and returns their statuses.
 */
async function whileScopeHeld(scope: string, burst: () => Array<Promise<{ status: number }>>) {
  const holder = new pg.Client({ connectionString: suite.app.config.databaseUrl });
  await holder.connect();
  try {
    await holder.query('begin');
    await holder.query(`select pg_advisory_xact_lock(hashtextextended($1, 0))`, [`${scope}:${await customerOf(alice())}`]);
    const answers = burst();
    await until(async () => (await advisoryWaiters()) >= 1, 'a create waits for the lock');
    // Let the rest of the burst reach the API (they are in flight either way).
    await new Promise((resolve) => setTimeout(resolve, 500));
    const waiting = await advisoryWaiters();
    // Another customer's read needs a pooled connection: it is answered while alice's creates wait.
    const read = suite.request('GET', '/api/v1/substrates', { token: bob().accessToken });
    const bobsRead = await Promise.race([read, new Promise<null>((resolve) => setTimeout(() => resolve(null), 15_000))]);
    await holder.query('commit');
    await read;
    return {
      waiting,
      bobsStatus: bobsRead?.status ?? 'no answer while the lock was held',
      statuses: (await Promise.all(answers)).map((a) => a.status),
    };
  } finally {
    await holder.end();
  }
}

describe("a customer's burst of capped creates holds one database connection, not the pool", () => {
  it('relationships: ten at once wait in line in the API, one of them in PostgreSQL', async () => {
    const ends = await Promise.all([1, 2, 3, 4, 5].map((value) => substrateOf(alice(), value)));
    const pairs = ends.flatMap((source) => ends.filter((target) => target !== source).map((target) => [source, target] as const));
    const outcome = await whileScopeHeld('relationships', () =>
      pairs.slice(0, 10).map(([source, target]) =>
        suite.request('POST', '/api/v1/relationships', {
          token: alice().accessToken,
          body: { source_id: source, target_id: target, type: 'DEPENDENCY' },
        }),
      ),
    );
    expect(outcome.waiting).toBe(1);
    expect(outcome.bobsStatus).toBe(200);
    expect(outcome.statuses).toEqual(Array(10).fill(201));
  });

  it('API keys: ten creates at once likewise', async () => {
    const outcome = await whileScopeHeld('api_keys', () =>
      Array.from({ length: 10 }, (_, i) =>
        suite.request('POST', '/api/v1/api-keys', { token: alice().accessToken, body: { name: `burst ${i}`, service_type: 'compute' } }),
      ),
    );
    expect(outcome.waiting).toBe(1);
    expect(outcome.bobsStatus).toBe(200);
    expect(outcome.statuses).toEqual(Array(10).fill(201));
  });
});
