/**
 * The attacks of issue 15, each a function of a running instance and an attacking customer. Only calls a
 * customer may make (the documented API), at the attacker's own tier. Each runs until `ctx.ended()` and
 * answers what the attacker was told.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { createSubstrate, type Customer } from './customers.js';
import { call, StatusCounts, type Answer } from './http.js';
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
  /** When the victim's webhook probe is sent, from the attack's start (default 2 s). */
  probeAfterMs?: number;
  run(ctx: AttackContext): Promise<AttackOutcome>;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function emptyOutcome(): AttackOutcome {
  return {
    requests: new StatusCounts(),
    jobs: { completed: 0, failed: 0, other: 0, reasons: {} },
    leftovers: { jobIds: [], schedules: [] },
    notes: {},
  };
}

/** Waits until the window is over, checking every `ms`. */
async function untilEnded(ctx: AttackContext, ms = 200): Promise<void> {
  while (!ctx.ended()) await pause(ms);
}

/** Repeats `round` until the window ends, at least `everyMs` apart (start to start). */
async function repeat(ctx: AttackContext, everyMs: number, round: (index: number) => Promise<void>): Promise<void> {
  for (let index = 0; !ctx.ended(); index++) {
    const started = Date.now();
    await round(index);
    while (!ctx.ended() && Date.now() - started < everyMs) await pause(100);
  }
}

function countReason(outcome: AttackOutcome, reason: string | null | undefined): void {
  const key = (reason ?? '(no reason given)').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '<id>').slice(0, 120);
  outcome.jobs.reasons[key] = (outcome.jobs.reasons[key] ?? 0) + 1;
}

/** Tallies a batch's items as they stand (completed/failed counts, and the reasons on the first page of items). */
async function tallyBatch(api: string, customer: Customer, batchId: string, outcome: AttackOutcome): Promise<void> {
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
async function tallyJobs(api: string, customer: Customer, ids: string[], outcome: AttackOutcome): Promise<void> {
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

/** The catastrophic-backtracking input of the issue: `s = "a"×30 + "b"` against `^(a|a)*$`. */
const regexExpression = 's.matches("^(a|a)*$")';
const regexInput = `${'a'.repeat(30)}b`;

/**
 * A legal expression that takes a few seconds to evaluate (about 2 s on an idle core of the development
 * machine; the time limit is 5 s): 120³ ≈ 1.7 million steps of nested comprehensions.
 */
const slowList = `[${Array.from({ length: 120 }, (_, i) => i).join(',')}]`;
export const nearLimitExpression = `${slowList}.map(a, ${slowList}.map(b, ${slowList}.filter(c, (a + b + c + int(x)) % 7 == 0).size()).size()).size() + x`;

function batchInvocations(substrateId: string, items: number, parameters: (i: number) => Record<string, unknown>) {
  return Array.from({ length: items }, (_, i) => ({ substrate_id: substrateId, parameters: parameters(i) }));
}

/** Posts a batch every `batchEverySeconds` for the whole window. */
function batchFlood(
  name: string,
  description: string,
  expression: string,
  parameters: (round: number, i: number) => Record<string, unknown>,
): Attack {
  return {
    name,
    description,
    async run(ctx) {
      const outcome = emptyOutcome();
      const substrateId = await createSubstrate(ctx.api, ctx.attacker, expression);
      const batchIds: string[] = [];
      await repeat(ctx, ctx.sizes.batchEverySeconds * 1000, async (round) => {
        const answer = await call(ctx.api, 'POST', '/batches', {
          token: ctx.attacker.key,
          body: { invocations: batchInvocations(substrateId, ctx.sizes.batchItems, (i) => parameters(round, i)) },
        });
        outcome.requests.add(answer);
        if (answer.body?.id) batchIds.push(answer.body.id as string);
      });
      for (const id of batchIds) await tallyBatch(ctx.api, ctx.attacker, id, outcome);
      outcome.leftovers.jobIds.push(...batchIds);
      outcome.notes.batches = batchIds.length;
      return outcome;
    },
  };
}

const salt = () => randomBytes(3).toString('hex');

export const regexBatches = batchFlood(
  'regex-batches',
  `s.matches("^(a|a)*$"), s = "a"×30+"b": a batch every 10 s`,
  regexExpression,
  (round, i) => ({ s: regexInput, n: `${salt()}-${round}-${i}` }),
);

export const nearLimitBatches = batchFlood(
  'near-limit-batches',
  'a legal expression taking ~2 s (limit 5 s): a batch every 10 s',
  nearLimitExpression,
  (round, i) => ({ x: round * 1_000_000 + i, n: salt() }),
);

export const regexSchedules: Attack = {
  name: 'regex-schedules',
  description: 'schedules (every 10 s) of regex batches: the attack repeats with no further requests',
  async run(ctx) {
    const outcome = emptyOutcome();
    const substrateId = await createSubstrate(ctx.api, ctx.attacker, regexExpression);
    for (let i = 0; i < ctx.sizes.schedules; i++) {
      const name = `noisy-${salt()}-${i}`;
      const answer = await call(ctx.api, 'POST', '/schedules', {
        token: ctx.attacker.key,
        body: {
          name,
          every_ms: ctx.sizes.batchEverySeconds * 1000,
          job: {
            type: 'batch',
            payload: { invocations: batchInvocations(substrateId, ctx.sizes.batchItems, (j) => ({ s: regexInput, n: `${i}-${j}` })) },
          },
        },
      });
      outcome.requests.add(answer);
      if (answer.status < 300) outcome.leftovers.schedules.push(name);
      if (ctx.ended()) break;
    }
    await untilEnded(ctx);
    // The runs the schedules made (the attacker is new for this attack: all its batch jobs).
    const runs = await call(ctx.api, 'GET', '/jobs?type=batch&limit=100', { token: ctx.attacker.key });
    const runIds = ((runs.body?.items ?? []) as Array<{ id: string }>).map((job) => job.id);
    for (const id of runIds) await tallyBatch(ctx.api, ctx.attacker, id, outcome);
    outcome.leftovers.jobIds.push(...runIds);
    outcome.notes.schedules = outcome.leftovers.schedules.length;
    outcome.notes.scheduled_runs = runIds.length;
    return outcome;
  },
};

/** `POST /substrates/batch` bodies of ~10.5 KB per substrate: a 2 KB expression and 60 metadata keys. */
function substrateBatchBody(items: number, tag: string): string {
  const metadata = (i: number) =>
    Object.fromEntries(Array.from({ length: 60 }, (_, k) => [`key_${k}`, `${tag}-${i}-${k}-`.padEnd(110, 'm')]));
  const expression = (i: number) => `[${Array.from({ length: 400 }, (_, k) => (k * 7 + i) % 1000).join(', ')}].size() + x`;
  return JSON.stringify({
    substrates: Array.from({ length: items }, (_, i) => ({
      expression_type: 'expression',
      expression: expression(i) + ` + ${tag.length}`,
      metadata: metadata(i),
    })),
  });
}

export const substrateBatches: Attack = {
  name: 'substrate-batches',
  description: 'POST /substrates/batch, 1,000 × (2 KB expression + 60 metadata keys) ≈ 10 MB, 4 at once',
  async run(ctx) {
    const outcome = emptyOutcome();
    let bytes = 0;
    await repeat(ctx, 0, async (round) => {
      const bodies = Array.from({ length: ctx.sizes.substrateBatchesInParallel }, (_, k) =>
        substrateBatchBody(ctx.sizes.substrateBatchItems, `${salt()}${round}${k}`),
      );
      bytes = bodies[0]?.length ?? 0;
      const answers = await Promise.all(
        bodies.map((rawBody) => call(ctx.api, 'POST', '/substrates/batch', { token: ctx.attacker.key, rawBody })),
      );
      for (const answer of answers) outcome.requests.add(answer);
    });
    outcome.notes.body_mb = Math.round(bytes / 1e5) / 10;
    return outcome;
  },
};

export const failedLogins: Attack = {
  name: 'failed-logins',
  description: 'bursts of 20 failed logins from one address (unknown emails), every 3 s',
  async run(ctx) {
    const outcome = emptyOutcome();
    await repeat(ctx, 3000, async () => {
      const answers = await Promise.all(
        Array.from({ length: ctx.sizes.loginBurst }, () =>
          call(ctx.api, 'POST', '/auth/login', { body: { email: `nobody-${salt()}@example.test`, password: 'not the password' } }),
        ),
      );
      for (const answer of answers) outcome.requests.add(answer);
    });
    return outcome;
  },
};

export const bigResults: Attack = {
  name: 'big-results',
  description: '[s, s, …×300] with a 16 KB s: 4.8 MB results, 3 at once, repeated',
  async run(ctx) {
    const outcome = emptyOutcome();
    const expression = `[${Array.from({ length: ctx.sizes.resultCopies }, () => 's').join(', ')}]`;
    const substrateId = await createSubstrate(ctx.api, ctx.attacker, expression);
    await repeat(ctx, 0, async () => {
      const answers: Answer[] = await Promise.all(
        Array.from({ length: ctx.sizes.resultCallsInParallel }, () =>
          call(ctx.api, 'POST', `/substrates/${substrateId}/invoke`, {
            token: ctx.attacker.key,
            body: { parameters: { s: salt().padEnd(ctx.sizes.resultStringLength, 'x') } },
            headers: { prefer: 'wait=30' },
          }),
        ),
      );
      for (const answer of answers) {
        outcome.requests.add(answer);
        if (answer.body?.id) outcome.leftovers.jobIds.push(answer.body.id as string);
      }
      if (answers.every((answer) => answer.status === 429)) await pause(1000);
    });
    await tallyJobs(ctx.api, ctx.attacker, outcome.leftovers.jobIds, outcome);
    outcome.notes.result_mb = Math.round((ctx.sizes.resultCopies * ctx.sizes.resultStringLength) / 1e5) / 10;
    return outcome;
  },
};

export const enterpriseReads: Attack = {
  name: 'enterprise-reads',
  description: 'an enterprise customer: waves of 3,000 concurrent GET /jobs',
  async run(ctx) {
    const outcome = emptyOutcome();
    let waves = 0;
    await repeat(ctx, 0, async () => {
      const answers = await Promise.all(
        Array.from({ length: ctx.sizes.concurrentReads }, () =>
          call(ctx.api, 'GET', '/jobs?limit=100', { token: ctx.enterprise.key, timeoutMs: 60_000 }),
        ),
      );
      for (const answer of answers) outcome.requests.add(answer);
      waves++;
    });
    outcome.notes.waves = waves;
    return outcome;
  },
};

/** Loopback servers that accept every connection and never answer. */
async function hangingServers(count: number): Promise<{ urls: string[]; close(): Promise<void> }> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = http.createServer(() => undefined);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return server;
    }),
  );
  return {
    urls: servers.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`),
    async close() {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    },
  };
}

export const hangingWebhooks: Attack = {
  name: 'hanging-webhooks',
  description: '50 webhook endpoints that never answer, every job of the attacker delivered to each',
  // Once the attacker's jobs have completed and their deliveries hang.
  probeAfterMs: 6000,
  async run(ctx) {
    const outcome = emptyOutcome();
    const hanging = await hangingServers(ctx.sizes.hangingEndpoints);
    outcome.close = () => hanging.close();
    const webhookIds: string[] = [];
    for (const url of hanging.urls) {
      const answer = await call(ctx.api, 'POST', '/webhooks', {
        token: ctx.attacker.accessToken,
        body: { url, events: ['job.completed', 'job.failed', 'batch.completed'] },
      });
      outcome.requests.add(answer);
      if (answer.body?.id) webhookIds.push(answer.body.id as string);
    }
    const substrateId = await createSubstrate(ctx.api, ctx.attacker, 'x + 1');
    for (let i = 0; i < ctx.sizes.webhookJobs; i++) {
      const answer = await call(ctx.api, 'POST', `/substrates/${substrateId}/invoke`, {
        token: ctx.attacker.key,
        body: { parameters: { x: i, n: salt() } },
      });
      outcome.requests.add(answer);
      if (answer.body?.id) outcome.leftovers.jobIds.push(answer.body.id as string);
    }
    await untilEnded(ctx);
    await tallyJobs(ctx.api, ctx.attacker, outcome.leftovers.jobIds, outcome);
    // What the platform recorded for one of the hanging endpoints.
    const deliveries = webhookIds[0]
      ? await call(ctx.api, 'GET', `/webhooks/${webhookIds[0]}/deliveries?limit=100`, { token: ctx.attacker.accessToken })
      : null;
    const items = (deliveries?.body?.items ?? []) as Array<{
      state: string;
      attempts: Array<{ error?: string | null; status?: number | null }>;
    }>;
    outcome.notes.first_endpoint_deliveries = items.length;
    outcome.notes.first_endpoint_attempts = items.reduce((sum, item) => sum + (item.attempts?.length ?? 0), 0);
    outcome.notes.first_endpoint_example = JSON.stringify(items[0]?.attempts?.[0] ?? null).slice(0, 160);
    outcome.notes.endpoints = webhookIds.length;
    outcome.notes.deliveries_owed = webhookIds.length * ctx.sizes.webhookJobs;
    return outcome;
  },
};

/** In the order issue 15 lists them. */
export const attacks: Attack[] = [
  regexBatches,
  regexSchedules,
  nearLimitBatches,
  substrateBatches,
  failedLogins,
  bigResults,
  enterpriseReads,
  hangingWebhooks,
];
