import { Worker } from 'bullmq';
import { pino } from 'pino';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrm, type Orm } from '../../db/orm.js';
import { createRedis } from '../../lib/redis.js';
import { SubstrateDefinitionCache } from '../../db/substrate-definitions.js';
import { deposit } from '../../jobs/billing/account-operations.js';
import { createBillingJob, type BillingResult } from '../../jobs/billing/billing.job.js';
import type { EscrowAdapter } from '../../jobs/billing/escrow/escrow.js';
import { FaultyEscrow, type EscrowFault } from '../../jobs/billing/escrow/faulty-escrow.js';
import { postgresEscrow } from '../../jobs/billing/escrow/postgres-escrow.js';
import { RetryLaterError } from '../../jobs/errors.js';
import { JobStateWriter } from '../../workers/job-state-writer.js';
import { finishedJobsChannel } from '../../queue/job-notices.js';
import { createProcessor } from '../../workers/processor.js';
import { queueName, type QueuedJobData } from '../../queue/queues.js';
import { systemCustomerId } from '../../queue/schedules/platform-schedules.js';
import { waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { addUsage, billingState, checkLedger, jobContext, seedCustomer } from './back-office-fixtures.js';

let app: TestApp;
let orm: Orm;

beforeAll(async () => {
  app = await startTestApp({ PLATFORM_SCHEDULES: 'false', ESCROW_TIMEOUT_MS: '400' });
  orm = await createOrm(app.config.databaseUrl, { poolMax: 30 });
});

afterAll(async () => {
  await orm?.close();
  await app?.close();
});

function bill(escrow: EscrowAdapter): Promise<BillingResult> {
  return createBillingJob({ escrow }).process({}, jobContext(app, orm));
}

/**
 * Bills with the escrow working, as the job's retries would: on a shared, loaded machine a healthy escrow
 * call can still outlast the short test timeout, which only leaves the charge pending for the next try.
 */
async function billUntilDone(escrow: EscrowAdapter): Promise<BillingResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await bill(escrow);
    } catch (error) {
      if (!(error instanceof RetryLaterError) || attempt === 5) throw error;
    }
  }
}

/** Fails the first call for `customerId` with `fault`, then works. */
function failFirst(customerId: string, fault: EscrowFault, remote: boolean): FaultyEscrow {
  let failed = false;
  return new FaultyEscrow(postgresEscrow, {
    plan: (_n, request) => {
      if (request.customerId !== customerId || failed) return 'ok';
      failed = true;
      return fault;
    },
    remote: remote ? () => orm.em.fork() : undefined,
  });
}

describe('billing through a faulty escrow', () => {
  for (const remote of [false, true]) {
    const mode = remote ? 'remote escrow' : 'in-transaction ledger';
    for (const fault of ['fail', 'timeout', 'lose-answer', 'charge-then-timeout'] as const) {
      it(`${fault} (${mode}): the next run charges exactly once, with the same idempotency key`, async () => {
        const customer = await seedCustomer(app, { depositUsdCents: 1000, usage: [{ requests: 500 }] });
        const escrow = failFirst(customer, fault, remote);

        await expect(bill(escrow)).rejects.toBeInstanceOf(RetryLaterError);
        const afterFailure = await billingState(app, customer);
        // A remote escrow that charged but never said so has taken the money; billing has not recorded it yet.
        const chargedRemotely = remote && (fault === 'lose-answer' || fault === 'charge-then-timeout');
        expect(afterFailure).toMatchObject({
          balance: chargedRemotely ? 990 : 1000,
          charges: chargedRemotely ? [10] : [],
          chargedOnRecords: 0,
          monthCharged: 0,
        });
        const [pending] = await app.sql(`select state from billing_charges where customer_id = $1`, [customer]);
        expect(pending).toEqual({ state: 'pending' });

        await billUntilDone(escrow);
        const settled = await billingState(app, customer);
        expect(settled).toEqual({
          balance: 990,
          monthCharged: 10,
          charges: [10],
          unbilledRecords: 0,
          chargedOnRecords: 10,
          suspendedReasons: [null],
        });
        const keys = escrow.calls.filter((call) => call.key.startsWith('chg_')).map((call) => call.key);
        expect(new Set(keys).size).toBe(1);

        await billUntilDone(escrow);
        expect(await billingState(app, customer)).toEqual(settled);
        await checkLedger(app);
      });
    }
  }

  it('random faults over many runs, with usage arriving in between, never double-charge or lose a charge', async () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const faults: EscrowFault[] = ['ok', 'fail', 'timeout', 'lose-answer', 'charge-then-timeout'];
    const customers = await Promise.all(Array.from({ length: 3 }, () => seedCustomer(app, { depositUsdCents: 10_000 })));
    const escrow = new FaultyEscrow(postgresEscrow, {
      plan: () => faults[Math.floor(random() * faults.length)]!,
      remote: () => orm.em.fork(),
    });
    for (let run = 0; run < 12; run++) {
      for (const [i, customer] of customers.entries()) {
        const requests = 100 + 50 * ((run + i) % 4);
        await addUsage(app, customer, { requests, hour: run });
      }
      await bill(escrow).catch((error: unknown) => {
        if (!(error instanceof RetryLaterError)) throw error;
      });
    }
    await billUntilDone(new FaultyEscrow(postgresEscrow, { plan: () => 'ok', remote: () => orm.em.fork() }));
    expect(escrow.calls.some((call) => call.fault !== 'ok')).toBe(true);

    for (const customer of customers) {
      const state = await billingState(app, customer);
      const [due] = await app.sql<{ cents: string }>(
        `select sum(round(request_count * 20000 / 1000000.0))::int as cents from usage_records where customer_id = $1`,
        [customer],
      );
      const posted = await app.sql(`select count(*)::int as n from billing_charges where customer_id = $1 and state = 'posted'`, [
        customer,
      ]);
      expect(state.unbilledRecords).toBe(0);
      expect(state.chargedOnRecords).toBe(Number(due!.cents));
      expect(state.charges.reduce((a, b) => a + b, 0)).toBe(Number(due!.cents));
      expect(state.charges).toHaveLength((posted[0] as { n: number }).n);
      expect(state.balance).toBe(10_000 - Number(due!.cents));
    }
    await checkLedger(app);
  });

  it('an escrow refusal suspends the customer; after a deposit the same records are charged once under a new key', async () => {
    const customer = await seedCustomer(app, { depositUsdCents: 1000, usage: [{ requests: 500 }] });
    let refuse = true;
    const stingy: EscrowAdapter = {
      name: 'stingy',
      async charge(em, req) {
        if (refuse && req.customerId === customer) return { status: 'insufficient-funds', balanceUsdCents: 0 };
        return postgresEscrow.charge(em, req);
      },
    };
    const first = await bill(stingy);
    expect(first.suspended).toEqual([{ customer_id: customer, reason: 'insufficient_balance', due_usd_cents: 10 }]);
    expect(await billingState(app, customer)).toMatchObject({
      balance: 1000,
      charges: [],
      unbilledRecords: 1,
      suspendedReasons: ['insufficient_balance'],
    });

    refuse = false;
    const resumed = await deposit(orm.em.fork(), { customerId: customer, amountUsdCents: 1, idempotencyKey: `refusal:${customer}` });
    expect(resumed.review).toMatchObject({ before: 'insufficient_balance', after: null, changed: true });
    await bill(stingy);
    expect(await billingState(app, customer)).toMatchObject({
      balance: 991,
      charges: [10],
      unbilledRecords: 0,
      chargedOnRecords: 10,
      suspendedReasons: [null],
    });
    const charges = await app.sql<{ state: string; key: string }>(
      `select state, idempotency_key as key from billing_charges where customer_id = $1 order by created_at`,
      [customer],
    );
    expect(charges.map((c) => c.state)).toEqual(['rejected', 'posted']);
    expect(charges[1]!.key).toBe(`${charges[0]!.key}.1`);
    await checkLedger(app);
  });
});

describe('a crash between the ledger commit and the job acknowledgement', () => {
  it('adds no charge: BullMQ retries the job and the retry finds nothing left to bill', async () => {
    const customer = await seedCustomer(app, { depositUsdCents: 1000, usage: [{ requests: 1500, hour: 20 }] });
    let crashed = 0;
    const definition = createBillingJob({
      afterCommit: (outcome) => {
        if (outcome.outcome === 'charged' && crashed === 0) {
          crashed += 1;
          throw new Error('worker died after the ledger commit, before acknowledging the job');
        }
      },
    });
    const logger = pino({ level: 'silent' });
    const writer = new JobStateWriter(orm.em.fork(), logger, finishedJobsChannel(app.config.queuePrefix));
    const worker = new Worker<QueuedJobData>(
      queueName('billing', null),
      createProcessor(definition, {
        config: app.config,
        orm,
        redis: app.deps.redis,
        cache: app.deps.cache,
        substrates: new SubstrateDefinitionCache(),
        runTask: () => Promise.reject(new Error('none')),
        writer,
        logger,
        hooks: [],
      }),
      { connection: createRedis(app.config.redis, 'blocking'), prefix: app.config.queuePrefix, concurrency: 1 },
    );
    try {
      // Accepted as every job is: the row first, then the BullMQ job under the row's id.
      const jobId = uuidv7();
      await app.sql(
        `insert into jobs (id, customer_id, type, state, payload, max_attempts) values ($1, $2, 'billing', 'queued', '{}', 3)`,
        [jobId, systemCustomerId],
      );
      await app.deps.queues
        .forJob('billing', jobId)
        .add('billing', { customerId: systemCustomerId, payload: {} }, { jobId, attempts: 3, backoff: { type: 'fixed', delay: 50 } });
      const row = await waitFor(async () => {
        const [job] = await app.sql<{ state: string; attempts_made: number; result: BillingResult | null }>(
          `select state, attempts_made, result from jobs where id = $1`,
          [jobId],
        );
        return job?.state === 'completed' ? job : null;
      }, 20_000);
      expect(crashed).toBe(1);
      expect(row.attempts_made).toBe(2);
      expect(row.result).toMatchObject({ charged: 0, charged_usd_cents: 0 });
      expect(await billingState(app, customer)).toMatchObject({ balance: 970, charges: [30], chargedOnRecords: 30, unbilledRecords: 0 });
      await checkLedger(app);
    } finally {
      await worker.close();
      await writer.drain();
    }
  });
});
