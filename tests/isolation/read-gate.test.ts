import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CustomerReadGate } from '../../api/customer-read-gate.js';
import { loadConfig } from '../../config.js';
import type { TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { openSse } from '../helpers/sse.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * A customer's reads running at once in one API process are capped (API_READS_PER_CUSTOMER); the rest wait in
 * that customer's own line, so another customer's read still gets a database connection at once. Without it an
 * enterprise customer's 200 concurrent GET /jobs filled the pool's queue and every other tenant waited behind
 * them (issue 15). Here every read of `jobs` is held by a lock the test holds, so the reads that reached
 * PostgreSQL are the API's backends waiting on that lock.
 */
const suite = useTestApp({ users: 2, env: { API_READS_PER_CUSTOMER: '2' } });
let holder: pg.Client;
let observer: pg.Client;

beforeAll(async () => {
  holder = new pg.Client({ connectionString: suite.app.config.databaseUrl });
  await holder.connect();
  observer = new pg.Client({ connectionString: suite.app.config.databaseUrl });
  await observer.connect();
});

afterAll(async () => {
  await holder?.end();
  await observer?.end();
});

/** The API's reads of `jobs` that reached PostgreSQL and wait there for the test's lock. */
const readsAtTheDatabase = async () =>
  Number(
    // Read outside the lock's transaction: inside one, pg_stat_activity answers the snapshot of its first read.
    (
      await observer.query<{ n: string }>(
        `select count(*) as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and wait_event = 'relation'`,
      )
    ).rows[0]!.n,
  );

describe("a customer's reads in one API process", () => {
  it("run two at a time; another customer's read reaches the database past the eight still waiting", async () => {
    const [attacker, victim] = suite.users as [TestUser, TestUser];
    const list = (user: TestUser) => suite.request('GET', '/api/v1/jobs?limit=100', { token: user.accessToken });
    await holder.query('begin');
    await holder.query('lock table jobs in access exclusive mode');
    let reads: Array<ReturnType<typeof list>> = [];
    try {
      reads = Array.from({ length: 10 }, () => list(attacker));
      await waitFor(async () => (await readsAtTheDatabase()) === 2);
      reads.push(list(victim));
      await waitFor(async () => (await readsAtTheDatabase()) === 3);
      // Still three: the attacker's other eight wait in its own line, not at the database.
      expect(await readsAtTheDatabase()).toBe(3);
    } finally {
      await holder.query('commit');
    }
    const answers = await Promise.all(reads);
    expect(answers.map((answer) => answer.status)).toEqual(Array(11).fill(200));
  });

  it('holds no place for an open event stream: two streams open, reads still answer', async () => {
    const [attacker] = suite.users as [TestUser, TestUser];
    const substrateId = await createExpressionSubstrate(suite.request, attacker.accessToken, 'x * y');
    // No worker runs here: the job stays queued and its stream stays open.
    const submitted = await suite.request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: attacker.accessToken,
      body: { parameters: { x: 3, y: 4 } },
    });
    expect(submitted.status, submitted.text).toBe(202);
    const url = `${suite.app.baseUrl}/api/v1/jobs/${submitted.body.id as string}/events`;
    const streams = [await openSse(url, { token: attacker.accessToken }), await openSse(url, { token: attacker.accessToken })];
    try {
      expect(streams.map((stream) => stream.status)).toEqual([200, 200]);
      const read = await suite.request('GET', `/api/v1/jobs/${submitted.body.id as string}`, { token: attacker.accessToken });
      expect(read.status).toBe(200);
    } finally {
      for (const stream of streams) stream.close();
    }
  });
});

describe('CustomerReadGate', () => {
  it("lets a customer's reads through up to its limit, then one per read that ends, first come first served", async () => {
    const gate = new CustomerReadGate(10, 2);
    const order: string[] = [];
    const first = gate.enter('a') as () => void;
    const second = gate.enter('a') as () => void;
    const third = Promise.resolve(gate.enter('a')).then((leave) => (order.push('third'), leave));
    const fourth = Promise.resolve(gate.enter('a')).then((leave) => (order.push('fourth'), leave));
    expect(typeof first).toBe('function');
    expect(typeof second).toBe('function');
    // Another customer is not behind them.
    expect(typeof gate.enter('b')).toBe('function');
    await Promise.resolve();
    expect(order).toEqual([]);
    first();
    first(); // a second call gives nothing back twice
    (await third)();
    second();
    (await fourth)();
    expect(order).toEqual(['third', 'fourth']);
  });

  it('forgets a customer once its last read ends', () => {
    const gate = new CustomerReadGate(10, 1);
    const leave = gate.enter('a') as () => void;
    expect(gate.customers).toBe(1);
    leave();
    expect(gate.customers).toBe(0);
  });

  it('never starts a read withdrawn while it waited (its client went away), and forgets the customer once nothing is held', async () => {
    const gate = new CustomerReadGate(10, 1);
    const started: string[] = [];
    const leave = gate.enter('a') as () => void;
    const gone = gate.enter('a');
    const kept = gate.enter('b') as () => void;
    const waiting = gate.enter('a');
    if (typeof gone === 'function' || typeof waiting === 'function') throw new Error('a second read of a started at once');
    void gone.then(() => started.push('gone'));
    void waiting.then(() => started.push('waiting'));
    gone.withdraw();
    gone.withdraw(); // a second withdraw does nothing
    leave();
    (await waiting)();
    expect(started).toEqual(['waiting']);
    // Withdrawn as the last one waiting: the customer leaves the turns and, with nothing running, the gate.
    const onlyOne = gate.enter('b');
    if (typeof onlyOne === 'function') throw new Error('b is at its cap');
    onlyOne.withdraw();
    expect(gate.customers).toBe(1);
    kept();
    expect(gate.customers).toBe(0);
    expect(typeof gate.enter('b')).toBe('function');
  });

  it('gives a freed place to the customers waiting in turn, not to the one that sent the most first', async () => {
    // Three places for everyone; an attacker's two accounts fill them and queue eight more, then a victim asks.
    const gate = new CustomerReadGate(3, 2);
    const started: string[] = [];
    const running: Array<() => void> = [];
    const ask = (customer: string, label: string) => {
      const entered = gate.enter(customer);
      const begin = (leave: () => void) => {
        started.push(label);
        running.push(leave);
      };
      if (typeof entered === 'function') begin(entered);
      else void entered.then(begin);
    };
    for (let i = 0; i < 5; i++) ask('a1', `a1-${i}`);
    for (let i = 0; i < 5; i++) ask('a2', `a2-${i}`);
    ask('victim', 'victim');
    await Promise.resolve();
    expect(started).toEqual(['a1-0', 'a1-1', 'a2-0']);
    // Each read that ends lets the next customer in turn start one (a1, a2, then the victim): the victim's read
    // is the third to start, not the ninth after both accounts' queued reads, as first come first served had it.
    for (let ended = 0; ended < 3; ended++) {
      running.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(started.slice(3)).toEqual(['a1-2', 'a2-1', 'victim']);
  });

  it('never runs more than its places at once, whatever the customers', async () => {
    const gate = new CustomerReadGate(2, 2);
    let now = 0;
    let most = 0;
    const reads = Array.from({ length: 12 }, async (_, i) => {
      const leave = await gate.enter(`c${i % 4}`);
      now += 1;
      most = Math.max(most, now);
      await new Promise((resolve) => setImmediate(resolve));
      now -= 1;
      leave();
    });
    await Promise.all(reads);
    expect(most).toBe(2);
    expect(gate.customers).toBe(0);
  });
});

describe('API_READS_AT_ONCE and API_READS_PER_CUSTOMER', () => {
  const services = { DATABASE_URL: 'postgresql://127.0.0.1:5432/unused', REDIS_URL: 'redis://127.0.0.1:6379', NODE_ENV: 'test' };

  it('default to 6 and 4; a value that is not a whole number ≥ 1 is refused, naming the variable', () => {
    expect(loadConfig(services)).toMatchObject({ apiReadsAtOnce: 6, apiReadsPerCustomer: 4 });
    for (const name of ['API_READS_AT_ONCE', 'API_READS_PER_CUSTOMER'])
      for (const value of ['0', '-1', '2.5', 'many'])
        expect(() => loadConfig({ ...services, [name]: value }), `${name}=${value}`).toThrow(new RegExp(name));
  });
});
