import type { EntityManager } from '@mikro-orm/postgresql';
import type { DeliveryState, WebhookDelivery } from '../entities/webhook-delivery.entity.js';
import { queryWithParameters } from '../query-with-parameters.js';

export interface NewDelivery {
  id: string;
  customerId: string;
  endpointId: string | null;
  jobId: string;
  url: string;
  eventType: string;
  payload: unknown;
  messageId: string;
  dedupeKey: string;
}

/**
 * Inserts deliveries; one already made under the same dedupe key (a retried hook) is kept, not
 * duplicated. Returns every stored delivery's id — the existing one for a duplicate — so enqueueing them
 * all is safe. A delivery to an endpoint deleted since the caller read it is skipped, not an error, so
 * the job's other deliveries (its own `webhook_url` among them) still go out: the endpoints are locked
 * FOR KEY SHARE first, and a row whose delete commits meanwhile drops out of that lock's answer.
 */
export async function insertDeliveries(em: EntityManager, rows: NewDelivery[]): Promise<string[]> {
  if (rows.length === 0) return [];
  const endpointIds = [...new Set(rows.flatMap((row) => (row.endpointId ? [row.endpointId] : [])))];
  const inserted = await queryWithParameters<{ id: string }>(
    em,
    `with live_endpoints as (select id from webhook_endpoints where id = any(?::uuid[]) for key share)
     insert into webhook_deliveries (id, customer_id, endpoint_id, job_id, url, event_type, payload, message_id, dedupe_key, queue_job_id)
     select d.* from (values ${rows.map(() => '(?::uuid, ?::uuid, ?::uuid, ?::uuid, ?, ?, ?::jsonb, ?, ?, ?)').join(', ')})
              as d (id, customer_id, endpoint_id, job_id, url, event_type, payload, message_id, dedupe_key, queue_job_id)
      where d.endpoint_id is null or d.endpoint_id in (select id from live_endpoints)
     on conflict (dedupe_key) do update set dedupe_key = excluded.dedupe_key
     returning id`,
    [
      `{${endpointIds.join(',')}}`,
      ...rows.flatMap((row) => [
        row.id,
        row.customerId,
        row.endpointId,
        row.jobId,
        row.url,
        row.eventType,
        JSON.stringify(row.payload),
        row.messageId,
        row.dedupeKey,
        row.id,
      ]),
    ],
  );
  return inserted.map((row) => row.id);
}

/** What the delivery worker needs to send one: the target, the body and the secret to sign with (null: the account secret, not made yet). */
export interface DeliveryToSend {
  id: string;
  customerId: string;
  url: string;
  payload: unknown;
  messageId: string;
  state: DeliveryState;
  /** The BullMQ job that currently carries it; any other job for it is stale. */
  queueJobId: string | null;
  encryptedSecret: string | null;
  /** Null for a job's own `webhook_url`. */
  endpointId: string | null;
  /** The endpoint's breaker holds deliveries back until then (epoch ms); null: closed. */
  breakerOpenUntil: number | null;
  /** The endpoint was disabled (a long failure); the delivery is not sent. */
  endpointDisabled: boolean;
}

export async function findDeliveryToSend(em: EntityManager, id: string): Promise<DeliveryToSend | null> {
  const rows = await em.getConnection().execute<DeliveryToSend[]>(
    `select d.id, d.customer_id as "customerId", coalesce(e.url, d.url) as url, d.payload, d.message_id as "messageId", d.state,
            d.queue_job_id as "queueJobId", d.endpoint_id as "endpointId",
            case when d.endpoint_id is null then s.encrypted_secret else e.encrypted_secret end as "encryptedSecret",
            (extract(epoch from e.breaker_open_until) * 1000)::float8 as "breakerOpenUntil",
            coalesce(e.disabled_at is not null, false) as "endpointDisabled"
       from webhook_deliveries d
       left join webhook_endpoints e on e.id = d.endpoint_id
       left join webhook_account_secrets s on s.customer_id = d.customer_id
      where d.id = ?`,
    [id],
  );
  return rows[0] ?? null;
}

export interface AttemptRecord {
  deliveryId: string;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  /** The delivery's state after this attempt. */
  state: DeliveryState;
}

/** Records one attempt and the delivery's new state in one statement; the attempt number is the delivery's running count. */
export async function recordAttempt(em: EntityManager, attempt: AttemptRecord & { id: string }): Promise<void> {
  await em.getConnection().execute(
    `with d as (
       update webhook_deliveries set attempts = attempts + 1, state = ?,
              finished_at = case when ? = 'pending' then null else now() end
        where id = ?
        returning id, attempts)
     insert into webhook_attempts (id, delivery_id, attempt, status_code, duration_ms, error)
     select ?, d.id, d.attempts, ?, ?, ? from d`,
    [attempt.state, attempt.state, attempt.deliveryId, attempt.id, attempt.statusCode, attempt.durationMs, attempt.error],
  );
}

export interface AttemptView {
  attempt: number;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
  at: string;
}

export type DeliveryWithAttempts = WebhookDelivery & { attemptLog: AttemptView[] };

const deliveryColumns = `d.id, d.customer_id as "customerId", d.endpoint_id as "endpointId", d.job_id as "jobId", d.url, d.event_type as "eventType",
  d.payload, d.message_id as "messageId", d.dedupe_key as "dedupeKey", d.state, d.attempts, d.queue_job_id as "queueJobId",
  d.created_at as "createdAt", d.finished_at as "finishedAt",
  coalesce((select json_agg(json_build_object('attempt', a.attempt, 'status_code', a.status_code, 'duration_ms', a.duration_ms,
                                              'error', a.error, 'at', to_char(a.at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                            order by a.attempt)
              from webhook_attempts a where a.delivery_id = d.id), '[]'::json) as "attemptLog"`;

/** An endpoint's deliveries, newest first (keyset on the UUIDv7 id), each with every attempt. */
export async function listDeliveries(
  em: EntityManager,
  endpointId: string,
  beforeId: string | undefined,
  limit: number,
): Promise<DeliveryWithAttempts[]> {
  const params: unknown[] = [endpointId];
  if (beforeId) params.push(beforeId);
  params.push(limit);
  return em
    .getConnection()
    .execute<DeliveryWithAttempts[]>(
      `select ${deliveryColumns} from webhook_deliveries d where d.endpoint_id = ? ${beforeId ? 'and d.id < ?' : ''} order by d.id desc limit ?`,
      params,
    );
}

/** A job's deliveries (to endpoints and to its own `webhook_url`), newest first, each with every attempt. */
export async function listJobDeliveries(
  em: EntityManager,
  customerId: string,
  jobId: string,
  beforeId: string | undefined,
  limit: number,
): Promise<DeliveryWithAttempts[]> {
  const params: unknown[] = [jobId, customerId];
  if (beforeId) params.push(beforeId);
  params.push(limit);
  return em
    .getConnection()
    .execute<DeliveryWithAttempts[]>(
      `select ${deliveryColumns} from webhook_deliveries d where d.job_id = ? and d.customer_id = ? ${beforeId ? 'and d.id < ?' : ''} order by d.id desc limit ?`,
      params,
    );
}

export async function findDelivery(em: EntityManager, endpointId: string, id: string): Promise<DeliveryWithAttempts | null> {
  const rows = await em
    .getConnection()
    .execute<DeliveryWithAttempts[]>(`select ${deliveryColumns} from webhook_deliveries d where d.id = ? and d.endpoint_id = ?`, [
      id,
      endpointId,
    ]);
  return rows[0] ?? null;
}

/** Puts a delivery back to pending under a new BullMQ job id; returns the BullMQ id it had. */
export async function restartDelivery(em: EntityManager, id: string, queueJobId: string): Promise<string | null> {
  const rows = await em.getConnection().execute<Array<{ previous: string | null }>>(
    `update webhook_deliveries d set state = 'pending', finished_at = null, queue_job_id = ?
       from (select id, queue_job_id from webhook_deliveries where id = ? for update) old
      where d.id = old.id
      returning old.queue_job_id as previous`,
    [queueJobId, id],
  );
  return rows[0]?.previous ?? null;
}

export interface ExpireDeliveriesStep {
  /** The last delivery id read: the next step reads past it; null when nothing was left to read. */
  lastId: string | null;
  deliveries: number;
  attempts: number;
}

/**
 * One retention step over webhook deliveries (SPEC §9): reads the next `stepRows` deliveries after `afterId`
 * and below `bound` (UUIDv7 ids, so creation order), and deletes those that finished (succeeded or failed)
 * more than `days` ago, their attempts first in slices of `stepRows`. A pending delivery stays, whatever its age.
 */
export async function expireDeliveriesStep(
  em: EntityManager,
  options: { afterId: string | null; bound: string; days: number; stepRows: number; daySeconds?: number },
): Promise<ExpireDeliveriesStep> {
  const connection = em.getConnection();
  const expired = `d.state in ('succeeded', 'failed') and d.finished_at < now() - ?::int * (?::int * interval '1 second')`;
  const cutoffParams = [options.days, options.daySeconds ?? 86_400];
  const [scan] = await connection.execute<Array<{ last_id: string | null; ids: string[] }>>(
    `with scanned as (
       select id, state, finished_at from webhook_deliveries
        where id > ?::uuid and id < ?::uuid order by id limit ?)
     select (select id::text from scanned order by id desc limit 1) as last_id,
            (select coalesce(array_agg(d.id::text), '{}') from scanned d where ${expired}) as ids`,
    [options.afterId ?? '00000000-0000-0000-0000-000000000000', options.bound, options.stepRows, ...cutoffParams],
  );
  const ids = scan?.ids ?? [];
  if (ids.length === 0) return { lastId: scan?.last_id ?? null, deliveries: 0, attempts: 0 };
  const idArray = `{${ids.join(',')}}`;
  let attempts = 0;
  for (;;) {
    const [slice] = await connection.execute<Array<{ n: number }>>(
      `with gone as (
         delete from webhook_attempts where id in (select id from webhook_attempts where delivery_id = any(?::uuid[]) limit ?)
         returning 1)
       select count(*)::int as n from gone`,
      [idArray, options.stepRows],
    );
    attempts += slice?.n ?? 0;
    if ((slice?.n ?? 0) < options.stepRows) break;
  }
  // The condition again: a delivery redelivered since the read is pending and stays.
  const [deleted] = await connection.execute<Array<{ n: number }>>(
    `with gone as (delete from webhook_deliveries d where d.id = any(?::uuid[]) and ${expired} returning 1)
     select count(*)::int as n from gone`,
    [idArray, ...cutoffParams],
  );
  return { lastId: scan!.last_id, deliveries: deleted?.n ?? 0, attempts };
}

/** A delivery still to send, as the delivery sweep reads it. */
export interface PendingDelivery {
  id: string;
  queueJobId: string | null;
}

/**
 * Pending deliveries created before `beforeId` (a UUIDv7 bound, so "older than"), after `afterId`, oldest first:
 * one step of the delivery sweep (workers/webhooks/delivery-sweep.ts), read off `webhook_deliveries_pending_index`.
 */
export async function listPendingDeliveries(
  em: EntityManager,
  beforeId: string,
  afterId: string | null,
  limit: number,
): Promise<PendingDelivery[]> {
  return em.getConnection().execute<PendingDelivery[]>(
    `select id, queue_job_id as "queueJobId" from webhook_deliveries
      where state = 'pending' and id < ?::uuid and id > ?::uuid
      order by id limit ?`,
    [beforeId, afterId ?? '00000000-0000-0000-0000-000000000000', limit],
  );
}
