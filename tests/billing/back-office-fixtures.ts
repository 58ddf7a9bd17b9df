import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { expect } from 'vitest';
import type { Orm } from '../../db/orm.js';
import { deposit } from '../../jobs/billing/account-operations.js';
import type { JobContext } from '../../jobs/context.js';
import type { JobDefinition } from '../../jobs/define-job.js';
import { standaloneJobContext } from '../../ops/standalone-job-context.js';
import type { httpClient, HttpResponse } from '../helpers/http.js';
import type { TestApp } from '../helpers/test-app.js';

type Request = ReturnType<typeof httpClient>;

/** A processor context on `orm` (a fresh fork), as the worker would build it for a platform job. */
export function jobContext(app: TestApp, orm: Orm, overrides: Partial<JobContext> = {}): JobContext {
  return standaloneJobContext(
    { logger: pino({ level: 'silent' }), em: orm.em.fork(), redis: app.deps.redis, config: app.config, cache: app.deps.cache },
    overrides,
  );
}

/** Runs a job definition's processor directly (no queue), with its payload `{}`. */
export function runJob<Result>(
  definition: JobDefinition<Record<string, never>, Result>,
  app: TestApp,
  orm: Orm,
  overrides: Partial<JobContext> = {},
): Promise<Result> {
  return definition.process({}, jobContext(app, orm, overrides));
}

export interface UsageLine {
  timestamp: string;
  customer_id: string;
  service_type: string;
  method: string;
  status_code: number;
  bytes_out: number;
}

/** `count` identical request-log lines. */
export function usageLines(count: number, line: UsageLine): UsageLine[] {
  return Array.from({ length: count }, () => ({ ...line }));
}

/** POST /admin/usage/ingest with NDJSON built from `lines` (strings are sent as they are). */
export function ingest(request: Request, adminToken: string, lines: ReadonlyArray<UsageLine | string>): Promise<HttpResponse> {
  const body = lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + '\n';
  return request('POST', '/api/v1/admin/usage/ingest', {
    token: adminToken,
    rawBody: body,
    headers: { 'content-type': 'application/x-ndjson' },
  });
}

export async function customerIdOf(request: Request, token: string): Promise<string> {
  const me = await request('GET', '/api/v1/auth/me', { token });
  if (me.status !== 200) throw new Error(`GET /auth/me: ${me.status} ${me.text}`);
  return me.body.customer_id as string;
}

export interface LedgerState {
  balances: Record<string, number>;
  transactions: number;
  entries: number;
}

/**
 * Checks the ledger's invariants and returns its state: every transaction's entries sum to zero (and there
 * are two), every account's balance equals the sum of its entries, and no customer balance is negative.
 */
export async function checkLedger(app: TestApp): Promise<LedgerState> {
  const unbalanced = await app.sql(
    `select t.id, coalesce(sum(e.amount_usd_cents), 0) as total, count(e.id) as legs
       from escrow_transactions t left join escrow_entries e on e.transaction_id = t.id
      group by t.id having coalesce(sum(e.amount_usd_cents), 0) <> 0 or count(e.id) <> 2`,
  );
  expect(unbalanced, 'transactions whose legs do not sum to zero').toEqual([]);
  const [orphans] = await app.sql<{ n: string }>(
    `select count(*) as n from escrow_entries e where not exists (select 1 from escrow_transactions t where t.id = e.transaction_id)`,
  );
  expect(Number(orphans!.n)).toBe(0);
  const drift = await app.sql(
    `select a.id, a.balance_usd_cents, coalesce(sum(e.amount_usd_cents), 0) as entries
       from escrow_accounts a left join escrow_entries e on e.account_id = a.id
      group by a.id having a.balance_usd_cents <> coalesce(sum(e.amount_usd_cents), 0)`,
  );
  expect(drift, 'accounts whose balance is not the sum of their entries').toEqual([]);
  const negative = await app.sql(`select id, balance_usd_cents from escrow_accounts where kind = 'customer' and balance_usd_cents < 0`);
  expect(negative, 'customer accounts below zero').toEqual([]);
  const [total] = await app.sql<{ total: string }>(`select coalesce(sum(amount_usd_cents), 0) as total from escrow_entries`);
  expect(Number(total!.total)).toBe(0);
  const accounts = await app.sql<{ id: string; balance: string }>(
    `select id, balance_usd_cents as balance from escrow_accounts order by id`,
  );
  const [counts] = await app.sql<{ transactions: string; entries: string }>(
    `select (select count(*) from escrow_transactions) as transactions, (select count(*) from escrow_entries) as entries`,
  );
  return {
    balances: Object.fromEntries(accounts.map((row) => [row.id, Number(row.balance)])),
    transactions: Number(counts!.transactions),
    entries: Number(counts!.entries),
  };
}

export interface SeedUsage {
  serviceType?: string;
  requests: number;
  bytes?: number;
  /** UTC hour on 2026-01-05 of the record's window. Default 10. */
  hour?: number;
}

/**
 * A customer made directly in the database: a `customers` row, optionally a deposit (through the same
 * ledger code the API uses) and unbilled usage records. Returns the customer id.
 */
export async function seedCustomer(
  app: TestApp,
  options: { depositUsdCents?: number; usage?: SeedUsage[]; maxMonthlyUsdCents?: number | null } = {},
): Promise<string> {
  const customerId = randomUUID();
  await app.sql(`insert into customers (id, name, max_monthly_usd_cents) values ($1, $2, $3)`, [
    customerId,
    `seed-${customerId.slice(0, 8)}`,
    options.maxMonthlyUsdCents ?? null,
  ]);
  await app.sql(
    `insert into service_instances (customer_id, service_type, tier, enabled) values ($1, 'compute', 'starter', true), ($1, 'seal', 'starter', true)`,
    [customerId],
  );
  if (options.depositUsdCents)
    await deposit(app.deps.orm.em.fork(), { customerId, amountUsdCents: options.depositUsdCents, idempotencyKey: `seed:${customerId}` });
  for (const usage of options.usage ?? []) await addUsage(app, customerId, usage);
  return customerId;
}

/** Adds an unbilled usage record (as metering would) for the customer. */
export async function addUsage(app: TestApp, customerId: string, usage: SeedUsage): Promise<void> {
  const start = new Date(Date.UTC(2026, 0, 5, usage.hour ?? 10));
  await app.sql(
    `insert into usage_records (customer_id, service_type, window_start, window_end, request_count, bytes_transferred)
     values ($1, $2, $3, $3::timestamptz + interval '1 hour', $4, $5)
     on conflict (customer_id, service_type, window_start) where charge_id is null and charged_usd_cents is null
     do update set request_count = usage_records.request_count + excluded.request_count, bytes_transferred = usage_records.bytes_transferred + excluded.bytes_transferred`,
    [customerId, usage.serviceType ?? 'seal', start.toISOString(), usage.requests, usage.bytes ?? 0],
  );
}

/** The customer's money and records as billing left them. */
export async function billingState(app: TestApp, customerId: string) {
  const [account] = await app.sql<{ balance: string; month: string }>(
    `select balance_usd_cents as balance, current_month_charged_usd_cents as month from escrow_accounts where id = $1`,
    [customerId],
  );
  const charges = await app.sql<{ amount: string; key: string }>(
    `select amount_usd_cents as amount, idempotency_key as key from escrow_transactions where customer_id = $1 and tx_type = 'charge' order by id`,
    [customerId],
  );
  const [records] = await app.sql<{ unbilled: string; charged: string | null }>(
    `select count(*) filter (where charged_usd_cents is null) as unbilled, sum(charged_usd_cents) as charged from usage_records where customer_id = $1`,
    [customerId],
  );
  const suspended = await app.sql<{ reason: string | null }>(
    `select distinct suspended_reason as reason from service_instances where customer_id = $1`,
    [customerId],
  );
  return {
    balance: Number(account?.balance ?? 0),
    monthCharged: Number(account?.month ?? 0),
    charges: charges.map((c) => Number(c.amount)),
    unbilledRecords: Number(records!.unbilled),
    chargedOnRecords: Number(records!.charged ?? 0),
    suspendedReasons: suspended.map((s) => s.reason),
  };
}
