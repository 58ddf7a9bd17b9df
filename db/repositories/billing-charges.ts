import type { EntityManager } from '@mikro-orm/postgresql';
import { uuidv7 } from '../../lib/uuid.js';
import { unbilledCondition } from './usage-records.js';
import type { BillingChargeState } from '../entities/billing-charge.entity.js';

export interface ChargeLine {
  record_id: string;
  usd_cents: number;
}

export interface BillingChargeRow {
  id: string;
  customerId: string;
  idempotencyKey: string;
  amountUsdCents: number;
  lines: ChargeLine[];
  state: BillingChargeState;
  txDigest: string | null;
}

const columns = `id, customer_id as "customerId", idempotency_key as "idempotencyKey", amount_usd_cents::float8 as "amountUsdCents", lines, state, tx_digest as "txDigest"`;

/** The customer's pending charge, if a run left one (at most one exists). */
export async function findPendingCharge(em: EntityManager, customerId: string): Promise<BillingChargeRow | null> {
  const [row] = await em.execute<BillingChargeRow[]>(`select ${columns} from billing_charges where customer_id = ? and state = 'pending'`, [
    customerId,
  ]);
  return row ?? null;
}

/** Locks a charge for settling; another run settling it waits, then sees its new state. */
export async function lockCharge(em: EntityManager, id: string): Promise<BillingChargeRow | null> {
  const [row] = await em.execute<BillingChargeRow[]>(`select ${columns} from billing_charges where id = ? for update`, [id]);
  return row ?? null;
}

/** How many charges with this key (or an earlier attempt's suffix of it) were rejected: the next attempt's suffix. */
export async function rejectedAttempts(em: EntityManager, baseKey: string): Promise<number> {
  const [row] = await em.execute<Array<{ n: number }>>(
    `select count(*)::int as n from billing_charges where state = 'rejected' and (idempotency_key = ? or starts_with(idempotency_key, ?))`,
    [baseKey, `${baseKey}.`],
  );
  return row?.n ?? 0;
}

/** Creates a pending charge and claims its usage records for it, so no other charge (or metering) touches them. */
export async function createPendingCharge(
  em: EntityManager,
  charge: { customerId: string; idempotencyKey: string; lines: ChargeLine[] },
): Promise<BillingChargeRow> {
  const amount = charge.lines.reduce((sum, line) => sum + line.usd_cents, 0);
  const [row] = await em.execute<BillingChargeRow[]>(
    `insert into billing_charges (id, customer_id, idempotency_key, amount_usd_cents, lines, state) values (?, ?, ?, ?, ?::jsonb, 'pending') returning ${columns}`,
    [uuidv7(), charge.customerId, charge.idempotencyKey, amount, JSON.stringify(charge.lines)],
  );
  const claimed = await em.execute<Array<{ id: string }>>(
    `update usage_records set charge_id = ?, updated_at = now()
      where id in (select (line->>'record_id')::bigint from jsonb_array_elements(?::jsonb) line) and ${unbilledCondition('usage_records')}
      returning id`,
    [row!.id, JSON.stringify(charge.lines)],
  );
  if (claimed.length !== charge.lines.length)
    throw new Error(`charge ${row!.id}: claimed ${claimed.length} of ${charge.lines.length} usage records`);
  return row!;
}

/** The escrow took the money: each claimed record gets its cents, the charge its digest. */
export async function markChargePosted(em: EntityManager, charge: BillingChargeRow, txDigest: string): Promise<void> {
  await em.execute(
    `update usage_records r set charged_usd_cents = (line->>'usd_cents')::bigint, updated_at = now()
       from jsonb_array_elements(?::jsonb) line
      where r.id = (line->>'record_id')::bigint and r.charge_id = ?`,
    [JSON.stringify(charge.lines), charge.id],
  );
  await em.execute(`update billing_charges set state = 'posted', tx_digest = ?, settled_at = now() where id = ?`, [txDigest, charge.id]);
}

/** The escrow refused for want of funds: the charge is closed, and its records count as unbilled again (see `unbilledCondition`). */
export async function markChargeRejected(em: EntityManager, chargeId: string, error: string): Promise<void> {
  await em.execute(`update billing_charges set state = 'rejected', error = ?, settled_at = now() where id = ?`, [error, chargeId]);
}

/** The total of the customer's pending charge (0 without one). */
export async function pendingChargeTotal(em: EntityManager, customerId: string): Promise<number> {
  const [row] = await em.execute<Array<{ total: number }>>(
    `select coalesce(sum(amount_usd_cents), 0)::float8 as total from billing_charges where customer_id = ? and state = 'pending'`,
    [customerId],
  );
  return row?.total ?? 0;
}
