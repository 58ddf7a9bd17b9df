import type { EntityManager } from '@mikro-orm/postgresql';
import { jobExportKinds } from '../jobs/customer-jobs.js';
import { readInBatches } from '../cursor.js';
import { inTransaction } from '../transaction.js';

/**
 * One customer's data as NDJSON lines (SPEC §9, offboarding): a header, then every row of every kind
 * below, each line `{"kind": "<kind>", ...row}`, then an `end` line. Everything is read in one REPEATABLE
 * READ, READ ONLY transaction, so the header's counts are exactly the rows that follow even while the
 * customer is still working; rows come through a server-side cursor per kind, `fetchRows` at a time,
 * and PostgreSQL writes each line's JSON itself — memory stays flat whether there are ten rows or ten million.
 *
 * The price of the snapshot is one pooled connection held, and vacuum held back, for as long as the
 * reader takes (the route allows one export per API process at a time).
 */

/** One kind of row: where its rows are (`?` is the customer id, once) and what is written of them. */
export interface ExportKind {
  kind: string;
  /** The columns written; secrets (key hashes, encrypted keys and signing secrets) are never among them. */
  select: string;
  /** `table alias where …` with one `?` for the customer id. */
  from: string;
  order: string;
}

/** The kinds in the order they are written (the header's `counts` has one entry per kind). */
export const exportKinds: readonly ExportKind[] = [
  { kind: 'user', select: 'u.id, u.email, u.role, u.created_at', from: 'users u where u.customer_id = ?', order: 'u.id' },
  { kind: 'service', select: 's.*', from: 'service_instances s where s.customer_id = ?', order: 's.service_type' },
  {
    kind: 'api_key',
    select: 'k.id, k.name, k.service_type, k.prefix, k.expires_at, k.revoked_at, k.created_at',
    from: 'api_keys k where k.customer_id = ?',
    order: 'k.id',
  },
  ...jobExportKinds,
  // No expression text: no endpoint ever returns it (SPEC §5); a constant's value stands in for it, as elsewhere.
  {
    kind: 'substrate',
    select: 's.id, s.customer_id, s.identity, s.expression_type, s.value, s.metadata, s.created_at, s.updated_at',
    from: 'substrates s where s.customer_id = ?',
    order: 's.id',
  },
  { kind: 'relationship', select: 'r.*', from: 'relationships r where r.customer_id = ?', order: 'r.id' },
  { kind: 'schedule', select: 's.*', from: 'schedules s where s.customer_id = ?', order: 's.name' },
  {
    kind: 'webhook_endpoint',
    select: `w.id, w.url, w.events, w.created_at, w.consecutive_failures, w.failing_since, w.breaker_open_until,
             w.breaker_opens, w.disabled_at, w.disabled_reason`,
    from: 'webhook_endpoints w where w.customer_id = ?',
    order: 'w.id',
  },
  { kind: 'webhook_delivery', select: 'd.*', from: 'webhook_deliveries d where d.customer_id = ?', order: 'd.id' },
  // No per-customer index on request_logs (it would tax every API call): the cursor walks the table once.
  { kind: 'request_log', select: 'r.*', from: 'request_logs r where r.customer_id = ?', order: 'r.id' },
  { kind: 'usage_record', select: 'u.*', from: 'usage_records u where u.customer_id = ?', order: 'u.id' },
  { kind: 'charge', select: 'c.*', from: 'billing_charges c where c.customer_id = ?', order: 'c.id' },
  {
    kind: 'ledger_account',
    // Its own `kind` column would shadow the line's: written as `account_kind`.
    select: `a.id, a.customer_id, a.kind as account_kind, a.balance_usd_cents, a.current_month_charged_usd_cents,
             a.last_month_charged_usd_cents, a.current_month_start, a.created_at, a.updated_at`,
    from: 'escrow_accounts a where a.customer_id = ?',
    order: 'a.id',
  },
  { kind: 'ledger_transaction', select: 't.*', from: 'escrow_transactions t where t.customer_id = ?', order: 't.id' },
  {
    kind: 'ledger_entry',
    select: 'e.*',
    from: 'escrow_entries e where e.account_id in (select a.id from escrow_accounts a where a.customer_id = ?)',
    order: 'e.id',
  },
];

/** Rows per FETCH from a kind's cursor. */
const fetchRows = 1000;

export interface ExportHeader {
  kind: 'header';
  format: 'chrysalis.customer-export';
  version: 1;
  customer: Record<string, unknown>;
  exported_at: string;
  counts: Record<string, number>;
}

/**
 * Streams the customer's export into `write` (each call a batch of complete lines, each ending in `\n`;
 * await it for backpressure). Returns null, writing nothing, when there is no such customer; else the
 * header. `onHeader` runs before the first line is written (to audit, to send the answer's headers).
 * Stops between fetches once `signal` aborts (the caller has gone), rolling back the read.
 */
export async function exportCustomer(
  em: EntityManager,
  customerId: string,
  write: (chunk: string) => Promise<void>,
  options: { signal: AbortSignal; onHeader?: (header: ExportHeader) => Promise<void> },
): Promise<ExportHeader | null> {
  const { signal } = options;
  return inTransaction(em, async (tx) => {
    await tx.execute('set transaction isolation level repeatable read, read only');
    const [customer] = await tx.execute<Array<{ customer: Record<string, unknown>; exported_at: string }>>(
      // The balance is the ledger's (escrow_accounts); the customers row's own balance_usd_cents column is never
      // updated, and had shown 0 for a customer holding $148.30.
      `select to_jsonb(c) || jsonb_build_object('balance_usd_cents', coalesce(a.balance_usd_cents, 0)) as customer,
              to_jsonb(now()) #>> '{}' as exported_at
         from customers c left join escrow_accounts a on a.id = c.id::text
        where c.id = ?`,
      [customerId],
    );
    if (!customer) return null;
    const [counted] = await tx.execute<Array<Record<string, number>>>(
      `select ${exportKinds.map((k) => `(select count(*) from ${k.from})::float8 as "${k.kind}"`).join(', ')}`,
      exportKinds.map(() => customerId),
    );
    const header: ExportHeader = {
      kind: 'header',
      format: 'chrysalis.customer-export',
      version: 1,
      customer: customer.customer,
      exported_at: new Date(customer.exported_at).toISOString(),
      counts: Object.fromEntries(exportKinds.map((k) => [k.kind, Number(counted?.[k.kind] ?? 0)])),
    };
    await options.onHeader?.(header);
    await write(`${JSON.stringify(header)}\n`);
    let rows = 0;
    for (const kind of exportKinds) {
      // `{"kind": …,` then the row's own JSON without its opening brace: the kind comes first, in PostgreSQL's formatting.
      rows += await readInBatches<{ line: string }>(
        tx,
        `select '{"kind":"${kind.kind}",' || substr(row_to_json(r)::text, 2) as line
           from (select ${kind.select} from ${kind.from} order by ${kind.order}) r`,
        [customerId],
        fetchRows,
        (lines) => write(`${lines.map((row) => row.line).join('\n')}\n`),
        signal,
      );
    }
    await write(`${JSON.stringify({ kind: 'end', rows })}\n`);
    return header;
  });
}
