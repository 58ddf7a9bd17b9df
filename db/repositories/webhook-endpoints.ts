import type { EntityManager } from '@mikro-orm/postgresql';
import type { WebhookEndpoint, WebhookEvent } from '../entities/webhook-endpoint.entity.js';
import { inCustomerScope } from '../transaction.js';

const endpointColumns = `id, customer_id as "customerId", url, events, encrypted_secret as "encryptedSecret", created_at as "createdAt",
  consecutive_failures as "consecutiveFailures", failing_since as "failingSince", breaker_open_until as "breakerOpenUntil",
  breaker_opens as "breakerOpens", disabled_at as "disabledAt", disabled_reason as "disabledReason"`;

export async function countWebhookEndpoints(em: EntityManager, customerId: string): Promise<number> {
  const [row] = await em
    .getConnection()
    .execute<Array<{ count: string }>>(`select count(*) as count from webhook_endpoints where customer_id = ?`, [customerId]);
  return Number(row?.count ?? 0);
}

/**
 * Registers the endpoint unless the customer already has `maxPerCustomer`; null then. A per-customer
 * advisory lock makes the count and the insert one step, so parallel creates cannot pass the limit.
 */
export async function insertWebhookEndpointWithinLimit(
  em: EntityManager,
  row: { id: string; customerId: string; url: string; events: WebhookEvent[]; encryptedSecret: string },
  maxPerCustomer: number,
): Promise<WebhookEndpoint | null> {
  return inCustomerScope(em, 'webhook_endpoints', row.customerId, async (tx) => {
    // A statement of its own after the lock, so its snapshot sees every endpoint committed before it.
    const [inserted] = await tx.execute<WebhookEndpoint[]>(
      `insert into webhook_endpoints (id, customer_id, url, events, encrypted_secret)
       select ?, ?, ?, array[?]::text[], ?
        where (select count(*) from webhook_endpoints where customer_id = ?) < ?
       returning ${endpointColumns}`,
      [row.id, row.customerId, row.url, row.events, row.encryptedSecret, row.customerId, maxPerCustomer],
    );
    return inserted ?? null;
  });
}

export async function findWebhookEndpoint(em: EntityManager, customerId: string, id: string): Promise<WebhookEndpoint | null> {
  const rows = await em
    .getConnection()
    .execute<WebhookEndpoint[]>(`select ${endpointColumns} from webhook_endpoints where id = ? and customer_id = ?`, [id, customerId]);
  return rows[0] ?? null;
}

/** Newest first, keyset-paginated on the UUIDv7 id. */
export async function listWebhookEndpoints(
  em: EntityManager,
  customerId: string,
  beforeId: string | undefined,
  limit: number,
): Promise<WebhookEndpoint[]> {
  const params: unknown[] = [customerId];
  if (beforeId) params.push(beforeId);
  params.push(limit);
  return em
    .getConnection()
    .execute<WebhookEndpoint[]>(
      `select ${endpointColumns} from webhook_endpoints where customer_id = ? ${beforeId ? 'and id < ?' : ''} order by id desc limit ?`,
      params,
    );
}

/** Deletes the endpoint and (cascading) its deliveries; false when the customer has no such endpoint. */
export async function deleteWebhookEndpoint(em: EntityManager, customerId: string, id: string): Promise<boolean> {
  const rows = await em
    .getConnection()
    .execute<Array<{ id: string }>>(`delete from webhook_endpoints where id = ? and customer_id = ? returning id`, [id, customerId]);
  return rows.length > 0;
}

export interface AccountSecretRow {
  encryptedSecret: string;
  createdAt: Date;
}

/** The customer's account secret, created from `make()` on first use (concurrent first uses agree on one). */
export async function ensureAccountSecret(em: EntityManager, customerId: string, make: () => string): Promise<AccountSecretRow> {
  const connection = em.getConnection();
  const select = () =>
    connection.execute<AccountSecretRow[]>(
      `select encrypted_secret as "encryptedSecret", created_at as "createdAt" from webhook_account_secrets where customer_id = ?`,
      [customerId],
    );
  const [existing] = await select();
  if (existing) return existing;
  await connection.execute(
    `insert into webhook_account_secrets (customer_id, encrypted_secret) values (?, ?) on conflict (customer_id) do nothing`,
    [customerId, make()],
  );
  const [created] = await select();
  return created as AccountSecretRow;
}

/** Replaces the account secret; deliveries signed from now on use the new one. */
export async function rotateAccountSecret(em: EntityManager, customerId: string, encryptedSecret: string): Promise<AccountSecretRow> {
  const [row] = await em.getConnection().execute<AccountSecretRow[]>(
    `insert into webhook_account_secrets (customer_id, encrypted_secret) values (?, ?)
     on conflict (customer_id) do update set encrypted_secret = excluded.encrypted_secret, created_at = now()
     returning encrypted_secret as "encryptedSecret", created_at as "createdAt"`,
    [customerId, encryptedSecret],
  );
  return row as AccountSecretRow;
}

/** When an endpoint's breaker opens and when a long failure disables it (WEBHOOK_BREAKER_*, WEBHOOK_DISABLE_AFTER_*). */
export interface BreakerPolicy {
  /** Consecutive failures that open the breaker. */
  failuresToOpen: number;
  /** First cool-down; each further opening in the same run of failures doubles it, up to an hour. */
  cooldownMs: number;
  /** Consecutive failures that disable the endpoint. */
  failuresToDisable: number;
  /** A run of failures this long disables the endpoint. */
  disableAfterMs: number;
}

/** The longest an open breaker holds an endpoint back before a trial delivery. */
export const maxBreakerCooldownMs = 3_600_000;

export interface EndpointOutcome {
  consecutiveFailures: number;
  breakerOpenUntil: Date | null;
  /** This outcome disabled the endpoint (it was enabled before). */
  disabled: boolean;
  disabledReason: string | null;
}

/**
 * Feeds one delivery attempt's outcome into the endpoint's circuit breaker, in one statement: a success
 * closes it and clears the run of failures; a failure counts, opens the breaker from `failuresToOpen` on
 * (each opening cools down twice as long as the previous, up to an hour), and disables the endpoint when
 * the run reaches `failuresToDisable` failures or `disableAfterMs` of time. Null when the endpoint is gone.
 *
 * One UPDATE whose every new value is computed from the row it updates: concurrent deliveries to one
 * endpoint wait on its row lock, and PostgreSQL then recomputes them from the version the previous one
 * committed, so no failure is lost (reading the row in a CTE first counted 20 concurrent failures as 7-10).
 * A success on an endpoint whose breaker is already clear writes nothing (the usual case: no row version,
 * no lock), and answers from a read.
 */
export async function recordEndpointOutcome(
  em: EntityManager,
  endpointId: string,
  succeeded: boolean,
  policy: BreakerPolicy,
): Promise<EndpointOutcome | null> {
  const failures = 'e.consecutive_failures + 1';
  const since = 'coalesce(e.failing_since, now())';
  const longFailure = `${since} <= now() - v.disable_ms * interval '1 millisecond'`;
  const [row] = await em.getConnection().execute<EndpointOutcome[]>(
    `with v as (select ?::uuid as id, ?::boolean as ok, ?::int as to_open, ?::float8 as cooldown_ms, ?::int as to_disable, ?::float8 as disable_ms),
     updated as (
       update webhook_endpoints e set
              consecutive_failures = case when v.ok then 0 else ${failures} end,
              failing_since = case when v.ok then null else ${since} end,
              breaker_opens = case when v.ok then 0 when ${failures} >= v.to_open then e.breaker_opens + 1 else e.breaker_opens end,
              breaker_open_until = case when v.ok then null
                                        when ${failures} >= v.to_open
                                          then now() + least(v.cooldown_ms * power(2, least(e.breaker_opens, 20)), ${maxBreakerCooldownMs}) * interval '1 millisecond'
                                        else e.breaker_open_until end,
              disabled_at = case when v.ok or e.disabled_at is not null then e.disabled_at
                                 when ${failures} >= v.to_disable or ${longFailure} then now()
                                 end,
              disabled_reason = case when v.ok or e.disabled_at is not null then e.disabled_reason
                                     when ${failures} >= v.to_disable then format('%s consecutive failed deliveries', ${failures})
                                     when ${longFailure}
                                       then format('failing since %s', to_char(${since} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                                     end
         from v
        where e.id = v.id
          and (not v.ok or e.consecutive_failures <> 0 or e.failing_since is not null or e.breaker_open_until is not null or e.breaker_opens <> 0)
        returning e.consecutive_failures as "consecutiveFailures", e.breaker_open_until as "breakerOpenUntil",
                  -- Set to now() only by this statement (only an enabled endpoint gets a new disabled_at).
                  coalesce(e.disabled_at = now(), false) as disabled, e.disabled_reason as "disabledReason")
     select * from updated
     union all
     select e.consecutive_failures, e.breaker_open_until, false, e.disabled_reason
       from webhook_endpoints e, v
      where e.id = v.id and v.ok and not exists (select 1 from updated)`,
    [endpointId, succeeded, policy.failuresToOpen, policy.cooldownMs, policy.failuresToDisable, policy.disableAfterMs],
  );
  return row ?? null;
}

/** Enables a disabled endpoint again, its breaker closed; false when the customer has no such endpoint. */
export async function enableWebhookEndpoint(em: EntityManager, customerId: string, id: string): Promise<WebhookEndpoint | null> {
  const rows = await em.getConnection().execute<WebhookEndpoint[]>(
    `update webhook_endpoints set disabled_at = null, disabled_reason = null, consecutive_failures = 0, failing_since = null,
            breaker_open_until = null, breaker_opens = 0
      where id = ? and customer_id = ?
      returning ${endpointColumns}`,
    [id, customerId],
  );
  return rows[0] ?? null;
}
