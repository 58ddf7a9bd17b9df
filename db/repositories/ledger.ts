import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { uuidv7 } from '../../lib/uuid.js';
import type { EscrowTransactionType } from '../entities/escrow-transaction.entity.js';

/**
 * The escrow ledger: double-entry postings in integer cents. Every posting is one `escrow_transactions` row
 * and two `escrow_entries` legs that sum to zero; each account's stored balance moves by its leg in the same
 * statement sequence, so a balance always equals the sum of its entries. Callers run these inside their own
 * transaction.
 */

/** Where charges land. */
export const revenueAccountId = 'platform:revenue';
/** Where deposits come from: the outside world, so its balance runs negative. */
export const fundingAccountId = 'platform:funding';
/** Where admins' credits come from: money the platform gives away, so its balance runs negative too. */
export const creditsAccountId = 'platform:credits';

/** The month a spend counter belongs to: the first instant of the current UTC month. */
const currentMonthStartSql = `date_trunc('month', now(), 'UTC')`;

export interface CustomerAccount {
  customerId: string;
  balanceUsdCents: number;
  currentMonthChargedUsdCents: number;
  lastMonthChargedUsdCents: number;
  currentMonthStart: string;
  /** From `customers`: null = no monthly limit. */
  maxMonthlyUsdCents: number | null;
}

export interface LedgerTransaction {
  id: string;
  customerId: string;
  txType: EscrowTransactionType;
  amountUsdCents: number;
  txDigest: string;
  idempotencyKey: string;
  /** The user who asked for it (the admin of a credit); null for billing's charges. */
  createdBy: string | null;
  /** Why (every credit has one). */
  reason: string | null;
  createdAt: string;
}

const transactionColumns = `id, customer_id as "customerId", tx_type as "txType", amount_usd_cents::float8 as "amountUsdCents",
  tx_digest as "txDigest", idempotency_key as "idempotencyKey", created_by as "createdBy", reason, created_at as "createdAt"`;

/** Creates the customer's account (and the platform accounts) if missing. */
export async function ensureCustomerAccount(em: EntityManager, customerId: string): Promise<void> {
  await em.execute(
    `insert into escrow_accounts (id, customer_id, kind, current_month_start)
     values (?, ?, 'customer', ${currentMonthStartSql}), (?, null, 'revenue', ${currentMonthStartSql}), (?, null, 'funding', ${currentMonthStartSql}),
            (?, null, 'credits', ${currentMonthStartSql})
     on conflict (id) do nothing`,
    [customerId, customerId, revenueAccountId, fundingAccountId, creditsAccountId],
  );
}

async function readAccount(em: EntityManager, customerId: string, lock: boolean): Promise<CustomerAccount> {
  const [row] = await em.execute<Array<Record<string, unknown>>>(
    `select a.customer_id, a.balance_usd_cents::float8 as balance, a.current_month_charged_usd_cents::float8 as month_charged,
            a.last_month_charged_usd_cents::float8 as last_month_charged, a.current_month_start, c.max_monthly_usd_cents::float8 as max_monthly
       from escrow_accounts a left join customers c on c.id = a.customer_id
      where a.id = ?${lock ? ' for update of a' : ''}`,
    [customerId],
  );
  if (!row) throw new Error(`escrow account of customer ${customerId} is missing`);
  return {
    customerId,
    balanceUsdCents: row.balance as number,
    currentMonthChargedUsdCents: row.month_charged as number,
    lastMonthChargedUsdCents: row.last_month_charged as number,
    currentMonthStart: new Date(row.current_month_start as string).toISOString(),
    maxMonthlyUsdCents: (row.max_monthly as number | null) ?? null,
  };
}

/** The customer's account, created on first use. */
export async function readCustomerAccount(em: EntityManager, customerId: string): Promise<CustomerAccount> {
  await ensureCustomerAccount(em, customerId);
  return readAccount(em, customerId, false);
}

/**
 * The customer's account, locked until the transaction ends: every change to a customer's money (charge,
 * deposit, claim of usage for billing) takes this lock first, so they happen one at a time per customer.
 * A month that has ended is rolled over first.
 */
export async function lockCustomerAccount(em: EntityManager, customerId: string): Promise<CustomerAccount> {
  await ensureCustomerAccount(em, customerId);
  await readAccount(em, customerId, true);
  await rollOverMonths(em, customerId);
  return readAccount(em, customerId, false);
}

/**
 * Starts a new spend month for accounts whose month has ended (all of them, or one customer's): this
 * month's spend becomes last month's (0 if more than a month passed) and the counter restarts at 0.
 * Idempotent: an account already in the current month is untouched. Returns the customers rolled over.
 */
export async function rollOverMonths(em: EntityManager, customerId?: string): Promise<string[]> {
  const rows = await em.execute<Array<{ customer_id: string }>>(
    `update escrow_accounts
        set last_month_charged_usd_cents = case when current_month_start = ${currentMonthStartSql} - interval '1 month' then current_month_charged_usd_cents else 0 end,
            current_month_charged_usd_cents = 0,
            current_month_start = ${currentMonthStartSql},
            updated_at = now()
      where kind = 'customer' and current_month_start < ${currentMonthStartSql}${customerId ? ' and id = ?' : ''}
      returning customer_id`,
    customerId ? [customerId] : [],
  );
  return rows.map((row) => row.customer_id);
}

/** Adds a posted charge to the customer's spend this month. */
export async function addMonthlySpend(em: EntityManager, customerId: string, amountUsdCents: number): Promise<void> {
  await em.execute(
    `update escrow_accounts set current_month_charged_usd_cents = current_month_charged_usd_cents + ?, updated_at = now() where id = ?`,
    [amountUsdCents, customerId],
  );
}

/** Sets (or, with null, removes) the customer's monthly spending limit. */
export async function setMaxMonthlySpend(em: EntityManager, customerId: string, maxMonthlyUsdCents: number | null): Promise<void> {
  await em.execute(`update customers set max_monthly_usd_cents = ? where id = ?`, [maxMonthlyUsdCents, customerId]);
}

/** Share-locks the customer row until the transaction ends (it cannot be deleted meanwhile); false when there is none or it was deleted (offboarded). */
export async function shareLockCustomer(em: EntityManager, customerId: string): Promise<boolean> {
  const rows = await em.execute(`select id from customers where id = ? and deleted_at is null for share`, [customerId]);
  return rows.length > 0;
}

export interface PostingRequest {
  customerId: string;
  txType: EscrowTransactionType;
  amountUsdCents: number;
  idempotencyKey: string;
  /** Who asked (see LedgerTransaction.createdBy). */
  createdBy?: string | null;
  /** Why; a credit must say. */
  reason?: string | null;
}

/** Where each type of posting takes its money from and where it puts it. */
const legsOf = (request: PostingRequest): [debit: string, credit: string] => {
  if (request.txType === 'charge') return [request.customerId, revenueAccountId];
  return [request.txType === 'credit' ? creditsAccountId : fundingAccountId, request.customerId];
};

export type PostingOutcome =
  { status: 'posted' | 'replayed'; transaction: LedgerTransaction } | { status: 'insufficient-funds'; balanceUsdCents: number };

export class IdempotencyKeyConflictError extends Error {
  override name = 'IdempotencyKeyConflictError';
}

/** The digest a posting is known by outside: derived from its key, so a replay names the same posting. */
export const ledgerDigest = (idempotencyKey: string): string =>
  `0x${createHash('sha256').update(`chrysalis-escrow:${idempotencyKey}`).digest('hex')}`;

/**
 * Posts a deposit (funding → customer), an admin's credit (credits → customer) or a charge (customer →
 * revenue), idempotently by key: a key already posted returns that posting (`replayed`) and moves no money;
 * the same key with another customer, type, amount or reason throws IdempotencyKeyConflictError. A charge larger than the balance posts nothing and answers
 * `insufficient-funds`, so a customer balance never goes negative (the table's check constraint backs this up).
 */
export async function postCustomerTransaction(em: EntityManager, request: PostingRequest): Promise<PostingOutcome> {
  if (!Number.isSafeInteger(request.amountUsdCents) || request.amountUsdCents <= 0)
    throw new Error('a posting moves a positive whole number of cents');
  const account = await lockCustomerAccount(em, request.customerId);

  const [existing] = await em.execute<LedgerTransaction[]>(
    `select ${transactionColumns} from escrow_transactions where idempotency_key = ?`,
    [request.idempotencyKey],
  );
  if (existing) {
    const sameReason = existing.reason === (request.reason ?? null);
    if (
      existing.customerId !== request.customerId ||
      existing.txType !== request.txType ||
      existing.amountUsdCents !== request.amountUsdCents ||
      !sameReason
    ) {
      throw new IdempotencyKeyConflictError(`idempotency key ${request.idempotencyKey} already names another ${existing.txType}`);
    }
    return { status: 'replayed', transaction: existing };
  }
  if (request.txType === 'charge' && account.balanceUsdCents < request.amountUsdCents) {
    return { status: 'insufficient-funds', balanceUsdCents: account.balanceUsdCents };
  }

  const [debit, credit] = legsOf(request);
  const [transaction] = await em.execute<LedgerTransaction[]>(
    `insert into escrow_transactions (id, customer_id, tx_type, amount_usd_cents, tx_digest, idempotency_key, created_by, reason)
     values (?, ?, ?, ?, ?, ?, ?, ?) returning ${transactionColumns}`,
    [
      uuidv7(),
      request.customerId,
      request.txType,
      request.amountUsdCents,
      ledgerDigest(request.idempotencyKey),
      request.idempotencyKey,
      request.createdBy ?? null,
      request.reason ?? null,
    ],
  );
  await em.execute(`insert into escrow_entries (transaction_id, account_id, amount_usd_cents) values (?, ?, ?), (?, ?, ?)`, [
    transaction!.id,
    debit,
    -request.amountUsdCents,
    transaction!.id,
    credit,
    request.amountUsdCents,
  ]);
  await em.execute(
    `update escrow_accounts set balance_usd_cents = balance_usd_cents + case when id = ? then ?::bigint else ?::bigint end, updated_at = now() where id in (?, ?)`,
    [debit, -request.amountUsdCents, request.amountUsdCents, debit, credit],
  );
  return { status: 'posted', transaction: transaction! };
}

export interface TransactionListFilter {
  customerId: string;
  beforeId?: string;
  limit: number;
}

/** The customer's postings, newest first, keyset-paginated on the UUIDv7 id. */
export async function listLedgerTransactions(em: EntityManager, filter: TransactionListFilter): Promise<LedgerTransaction[]> {
  const params: unknown[] = [filter.customerId];
  let where = 'customer_id = ?';
  if (filter.beforeId) {
    where += ' and id < ?';
    params.push(filter.beforeId);
  }
  params.push(filter.limit);
  return em.execute<LedgerTransaction[]>(
    `select ${transactionColumns} from escrow_transactions where ${where} order by id desc limit ?`,
    params,
  );
}
