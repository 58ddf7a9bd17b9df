/**
 * Runs one attack while the victim is measured, then cleans up after the attacker and checks what must
 * never happen to the victim. Shared by `npm run test:noisy` (which asserts `problems` is empty) and the
 * `noisy` scenario of `npm run bench` (which adds the latency targets).
 */
import type { Redis } from 'ioredis';
import type { Config } from '../../../config.js';
import { customerRedisShare } from '../../../queue/redis-share.js';
import type { Attack, AttackContext, AttackOutcome } from './attacks.js';
import type { Customer } from './customers.js';
import { call } from './http.js';
import type { NoisySizes } from './sizes.js';
import type { Victim, VictimSample } from './victim.js';

/** The running instance, as the scenarios see it. */
export interface NoisyPlatform {
  /** Base URL including `/api/v1`. */
  api: string;
  /** A client of the instance's Redis (memory readings and the write probe). */
  redis: Redis;
  /** Jobs of any customer not yet final (queued, delayed, active), from PostgreSQL. */
  unfinishedJobs(): Promise<number>;
  /** The instance's configuration, as far as a customer's share of Redis depends on it (queue/redis-share.ts). */
  config: Pick<Config, 'tierMaxQueued' | 'tierMaxActive' | 'invocationCacheMaxBytesPerCustomer'>;
  log(message: string): void;
}

/** The victim's webhook must arrive within this long (issue 15). */
export const webhookDeadlineMs = 15_000;

export interface AttackReport {
  attack: string;
  description: string;
  victim: {
    calls: number;
    completed: number;
    failed: number;
    /** Left running by the 30 s wait (202), or never final. */
    unfinished: number;
    statuses: string;
    p50_ms: number;
    p99_ms: number;
    max_ms: number;
    failures: string[];
  };
  health: { probes: number; p99_ms: number; max_ms: number; non_200: number };
  /** `share_mib`: the attacking customer's printed bound (queue/redis-share.ts); Redis must not grow by more. */
  redis: { used_mib_before: number; used_mib_peak: number; share_mib: number; write_errors: number };
  webhook: { delivered_ms: number | null };
  attacker: { requests: string; answers: Record<string, string>; jobs: string; notes: Record<string, string | number> };
  /** The platform went quiet again after the attacker's work was cancelled. */
  drained: boolean;
  /** What must never happen, if it did (empty when the victim was unharmed). */
  problems: string[];
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[index] ?? 0);
}

const mib = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

export interface RunAttackOptions {
  platform: NoisyPlatform;
  victim: Victim;
  attacker: Customer;
  enterprise: Customer;
  sizes: NoisySizes;
}

export async function runAttack(attack: Attack, options: RunAttackOptions): Promise<AttackReport> {
  const { platform, victim, sizes } = options;
  platform.log(`${attack.name}: ${attack.description} (${sizes.windowSeconds} s, scale ${sizes.scale})`);
  const usedBefore = Number(/used_memory:(\d+)/.exec(await platform.redis.info('memory'))?.[1] ?? 0);
  const endsAt = Date.now() + sizes.windowSeconds * 1000;
  const ctx: AttackContext = {
    api: platform.api,
    attacker: options.attacker,
    enterprise: options.enterprise,
    sizes,
    ended: () => Date.now() >= endsAt,
  };
  const attackRun: Promise<AttackOutcome> = attack.run(ctx);
  // The victim is measured from the attack's start to its end (the attack returns once its window is over).
  const measured: Promise<VictimSample> = victim.measure(attackRun);
  // The victim's webhook: submitted once the attack is under way, due within 15 s.
  const webhook = new Promise((resolve) => setTimeout(resolve, attack.probeAfterMs ?? 2000)).then(() =>
    victim.webhookProbe(webhookDeadlineMs + 5000),
  );
  let outcome: AttackOutcome;
  try {
    outcome = await attackRun;
  } catch (error) {
    await measured.catch(() => undefined);
    throw error;
  }
  const sample = await measured;
  const delivered = await webhook;
  await outcome.close?.();
  const drained = await cleanUp(platform, options, outcome, sizes.drainSeconds * 1000);
  const finals = await victim.finalStates(sample.calls, sizes.drainSeconds * 1000);
  const share = customerRedisShare(platform.config, attack.attackerTier ?? 'starter').total;
  return summarise(attack, sample, outcome, finals, delivered, { before: usedBefore, share }, drained, sizes.drainSeconds);
}

/** Deletes the attacker's schedules, cancels its unfinished jobs and waits for the platform to go quiet. */
async function cleanUp(platform: NoisyPlatform, options: RunAttackOptions, outcome: AttackOutcome, timeoutMs: number): Promise<boolean> {
  const { api } = platform;
  for (const name of outcome.leftovers.schedules) {
    await call(api, 'DELETE', `/schedules/${encodeURIComponent(name)}`, { token: options.attacker.key });
  }
  const deadline = Date.now() + timeoutMs;
  for (const customer of [options.attacker, options.enterprise]) {
    for (let page = 0; page < 100 && Date.now() < deadline; page++) {
      const open = await call(api, 'GET', '/jobs?state=queued,delayed,active&limit=100', { token: customer.key });
      const ids = ((open.body?.items ?? []) as Array<{ id: string }>).map((job) => job.id);
      if (ids.length === 0) break;
      await Promise.all(ids.map((id) => call(api, 'DELETE', `/jobs/${id}`, { token: customer.key })));
    }
  }
  while (Date.now() < deadline) {
    if ((await platform.unfinishedJobs()) === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return false;
}

function summarise(
  attack: Attack,
  sample: VictimSample,
  outcome: AttackOutcome,
  finals: Map<string, { state: string; error: string | null }>,
  webhook: { ms: number | null; status: number },
  redisBytes: { before: number; share: number },
  drained: boolean,
  drainSeconds: number,
): AttackReport {
  const webhookMs = webhook.ms;
  const calls = sample.calls;
  const statuses = new Map<number, number>();
  for (const c of calls) statuses.set(c.status, (statuses.get(c.status) ?? 0) + 1);
  const finalState = (c: (typeof calls)[number]) => (c.status === 202 && c.jobId ? (finals.get(c.jobId)?.state ?? 'unfinished') : c.state);
  const failures = calls
    .filter((c) => c.status >= 500 || c.status === 0 || finalState(c) === 'failed' || (c.status >= 400 && c.status < 500))
    .map((c) => `${c.status} ${finalState(c) ?? ''} ${c.jobId ? (finals.get(c.jobId)?.error ?? c.error ?? '') : (c.error ?? '')}`.trim());
  const failed = calls.filter((c) => finalState(c) === 'failed').length;
  const fiveXx = calls.filter((c) => c.status >= 500 || c.status === 0).length;
  const otherErrors = calls.filter((c) => c.status >= 400 && c.status < 500).length;
  const unfinished = calls.filter((c) => c.status === 202 && finalState(c) !== 'completed' && finalState(c) !== 'failed').length;
  const latencies = calls.filter((c) => c.status === 200).map((c) => c.ms);
  const health = sample.health.map((h) => h.ms);
  const peak = Math.max(0, ...sample.redisUsedBytes);

  const problems: string[] = [];
  if (calls.length === 0) problems.push('the victim made no call at all during the attack');
  if (failed > 0) problems.push(`${failed} of the victim's ${calls.length} jobs failed (${[...new Set(failures)].slice(0, 3).join('; ')})`);
  if (fiveXx > 0) problems.push(`${fiveXx} of the victim's calls answered 5xx or not at all`);
  if (webhook.status >= 500 || webhook.status === 0) problems.push(`the victim's POST /jobs (webhook probe) answered ${webhook.status}`);
  if (otherErrors > 0)
    problems.push(`${otherErrors} of the victim's calls were refused (${[...new Set(failures)].slice(0, 3).join('; ')})`);
  if (unfinished > 0) problems.push(`${unfinished} of the victim's jobs were not final ${drainSeconds} s after the attack`);
  const healthFailures = sample.health.filter((h) => h.status !== 200).length;
  if (healthFailures > 0) problems.push(`/health failed ${healthFailures} times`);
  if (peak - redisBytes.before > redisBytes.share)
    problems.push(
      `Redis grew by ${mib(peak - redisBytes.before)} MiB, more than the attacker's share of ${mib(redisBytes.share)} MiB (queue/redis-share.ts)`,
    );
  if (sample.redisWriteErrors.length > 0)
    problems.push(`Redis refused ${sample.redisWriteErrors.length} writes (${sample.redisWriteErrors[0]})`);
  if (webhookMs === null || webhookMs > webhookDeadlineMs)
    problems.push(
      `the victim's webhook ${webhookMs === null ? `never arrived (its submit answered ${webhook.status})` : `took ${Math.round(webhookMs)} ms`} (due within ${webhookDeadlineMs} ms)`,
    );
  const unclear = outcome.requests.unclear();
  if (unclear.length > 0)
    problems.push(
      `the attacker got unclear answers: ${unclear.map((s) => `${s}×${outcome.requests.counts[s]} (${outcome.requests.examples[s]})`).join(', ')}`,
    );
  if (outcome.jobs.reasons['(no reason given)'])
    problems.push(`${outcome.jobs.reasons['(no reason given)']} of the attacker's jobs failed without a reason`);

  return {
    attack: attack.name,
    description: attack.description,
    victim: {
      calls: calls.length,
      completed: calls.filter((c) => finalState(c) === 'completed').length,
      failed,
      unfinished,
      statuses: [...statuses].map(([status, count]) => `${status}×${count}`).join(' '),
      p50_ms: percentile(latencies, 50),
      p99_ms: percentile(latencies, 99),
      max_ms: Math.round(Math.max(0, ...latencies)),
      failures: [...new Set(failures)].slice(0, 5),
    },
    health: { probes: health.length, p99_ms: percentile(health, 99), max_ms: Math.round(Math.max(0, ...health)), non_200: healthFailures },
    redis: {
      used_mib_before: mib(redisBytes.before),
      used_mib_peak: mib(peak),
      share_mib: mib(redisBytes.share),
      write_errors: sample.redisWriteErrors.length,
    },
    webhook: { delivered_ms: webhookMs === null ? null : Math.round(webhookMs) },
    attacker: {
      requests: outcome.requests.toString(),
      answers: outcome.requests.examples,
      jobs:
        `completed ${outcome.jobs.completed}, failed ${outcome.jobs.failed}, other ${outcome.jobs.other}` +
        (Object.keys(outcome.jobs.reasons).length > 0
          ? `; ${Object.entries(outcome.jobs.reasons)
              .map(([reason, n]) => `${n}× "${reason}"`)
              .join('; ')}`
          : ''),
      notes: outcome.notes,
    },
    drained,
    problems,
  };
}

/** One line per attack: the figures the issue asks for. */
export function printReports(reports: AttackReport[], print: (line: string) => void = console.log): void {
  const rows = reports.map((r) => ({
    attack: r.attack,
    'victim calls': r.victim.calls,
    'victim failed': r.victim.failed,
    'victim statuses': r.victim.statuses,
    'wait p50 ms': r.victim.p50_ms,
    'wait p99 ms': r.victim.p99_ms,
    'wait max ms': r.victim.max_ms,
    'health p99 ms': r.health.p99_ms,
    'redis MiB before/peak/share': `${r.redis.used_mib_before}/${r.redis.used_mib_peak}/${r.redis.share_mib}`,
    'webhook ms': r.webhook.delivered_ms ?? 'never',
    'attacker answers': r.attacker.requests,
    ok: r.problems.length === 0 ? 'yes' : 'NO',
  }));
  console.table(rows);
  for (const r of reports) {
    print(
      `${r.attack}: attacker jobs ${r.attacker.jobs}; notes ${JSON.stringify(r.attacker.notes)}; answers ${JSON.stringify(r.attacker.answers)}${r.drained ? '' : '; platform NOT drained afterwards'}`,
    );
    for (const problem of r.problems) print(`  ✗ ${problem}`);
  }
}
