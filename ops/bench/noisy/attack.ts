/**
 * What an attack is: a function of a running instance and an attacking customer, using only calls a
 * customer may make (the documented API) at the attacker's own tier. Each runs until `ctx.ended()` and
 * answers what the attacker was told. Helpers the attacks share are here too.
 */
import { randomBytes } from 'node:crypto';
import type { Tier } from '../../../db/entities/service-instance.entity.js';
import type { Customer } from './customers.js';
import { call, StatusCounts } from './http.js';
import type { NoisySizes } from './sizes.js';

export interface AttackContext {
  api: string;
  /** A starter customer. */
  attacker: Customer;
  /** An enterprise customer (no per-minute budget), for the concurrency attack. */
  enterprise: Customer;
  sizes: NoisySizes;
  /** True once the attack's window is over. */
  ended(): boolean;
}

export interface AttackOutcome {
  /** Every answer the attacker got, by status. */
  requests: StatusCounts;
  /** The attacker's jobs and batch items by final (or current) state, with the reasons given for failures. */
  jobs: { completed: number; failed: number; other: number; reasons: Record<string, number> };
  /** Batch ids and job ids to cancel afterwards, schedule names to delete. */
  leftovers: { jobIds: string[]; schedules: string[] };
  notes: Record<string, string | number>;
  /** Run after the window (closing servers the attack opened). */
  close?: () => Promise<void>;
}

export interface Attack {
  name: string;
  description: string;
  /** The tier of the customer that attacks (default starter): its share of Redis is what Redis may grow by. */
  attackerTier?: Tier;
  /** When the victim's webhook probe is sent, from the attack's start (default 2 s). */
  probeAfterMs?: number;
  run(ctx: AttackContext): Promise<AttackOutcome>;
}

export const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function emptyOutcome(): AttackOutcome {
  return {
    requests: new StatusCounts(),
    jobs: { completed: 0, failed: 0, other: 0, reasons: {} },
    leftovers: { jobIds: [], schedules: [] },
    notes: {},
  };
}

/** Waits until the window is over, checking every `ms`. */
export async function untilEnded(ctx: AttackContext, ms = 200): Promise<void> {
  while (!ctx.ended()) await pause(ms);
}

/** Repeats `round` until the window ends, at least `everyMs` apart (start to start). */
export async function repeat(ctx: AttackContext, everyMs: number, round: (index: number) => Promise<void>): Promise<void> {
  for (let index = 0; !ctx.ended(); index++) {
    const started = Date.now();
    await round(index);
    while (!ctx.ended() && Date.now() - started < everyMs) await pause(100);
  }
}

export function countReason(outcome: AttackOutcome, reason: string | null | undefined): void {
  const key = (reason ?? '(no reason given)').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>').slice(0, 120);
  outcome.jobs.reasons[key] = (outcome.jobs.reasons[key] ?? 0) + 1;
}

/** Tallies a batch's items as they stand (completed/failed counts, and the reasons on the first page of items). */
export async function tallyBatch(api: string, customer: Customer, batchId: string, outcome: AttackOutcome): Promise<void> {
  const batch = await call(api, 'GET', `/batches/${batchId}`, { token: customer.key });
  if (batch.status !== 200) return;
  const { total, completed, failed } = batch.body as { total: number; completed: number; failed: number };
  outcome.jobs.completed += completed;
  outcome.jobs.failed += failed;
  outcome.jobs.other += total - completed - failed;
  if (failed > 0) {
    const items = await call(api, 'GET', `/batches/${batchId}/items?limit=100`, { token: customer.key });
    for (const item of (items.body?.items ?? []) as Array<{ state: string; error?: string }>) {
      if (item.state === 'failed') countReason(outcome, item.error);
    }
  }
}

/** Tallies single jobs by their current state. */
export async function tallyJobs(api: string, customer: Customer, ids: string[], outcome: AttackOutcome): Promise<void> {
  for (const id of ids) {
    const job = await call(api, 'GET', `/jobs/${id}`, { token: customer.key });
    const state = job.body?.state as string | undefined;
    if (state === 'completed') outcome.jobs.completed++;
    else if (state === 'failed') {
      outcome.jobs.failed++;
      countReason(outcome, job.body?.error);
    } else outcome.jobs.other++;
  }
}

/** A short random tag: parameters never used before, so no answer comes from the invocation cache. */
export const salt = () => randomBytes(3).toString('hex');
