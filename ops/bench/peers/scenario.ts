/**
 * The `peers` scenario of `npm run bench`: the same N jobs — `x * y` evaluated in a Piscina pool, the
 * result row committed to PostgreSQL before the job completes — through Chrysalis's queue-drain, the
 * raw BullMQ program, graphile-worker (tuned and default) and pg-boss, one after another in one run on
 * the same PostgreSQL and Redis, each side on its own database. Per side: jobs/s from the first enqueue
 * to the last result row committed, and CPU seconds per process.
 */
import { readFileSync } from 'node:fs';
import { cpuBreakdown, cpuSeconds, round, waitForCount, type ScenarioResult } from '../harness.js';
import { createPeerDatabase } from './peer-database.js';
import { peerSides } from './peer-sides.js';
import type { PeerJob, PeerSide } from './side.js';

/** How every side commits, printed with the figures. */
export const durability =
  "synchronous_commit = off for every result row and job-state write on every side (Chrysalis sets it inside its worker's statements; the raw, graphile-worker and pg-boss worker processes connect with options=-c synchronous_commit=off); enqueues commit with the server's default (on), the raw program's go to Redis";

/** The sides the targets compare Chrysalis with (graphile-worker default is printed for reference). */
const comparedPeers = ['graphile-worker tuned', 'pg-boss'];

export interface PeersScenarioOptions {
  n: number;
  /** A database URL on the bench's PostgreSQL server; each side's database is created beside it. */
  adminUrl: string;
  /** Prefix of the sides' database names (the run's own database name keeps runs apart). */
  databasePrefix: string;
  redisUrl: string;
  /** BullMQ prefix for the raw program's queue; the bench removes its keys at the end. */
  queuePrefix: string;
  /** Chrysalis's queue-drain of `n` jobs, measured by the caller (its API and worker are already running). */
  chrysalis(): Promise<{ seconds: number; cpu: Record<string, number> }>;
  /** CPU seconds so far of the processes every side shares. */
  sharedCpu: { postgres: () => number; redis: () => number; bench: () => number };
  log(message: string): void;
  print(side: PeerSideResult): void;
}

export interface PeerSideResult {
  scenario: 'peers';
  side: string;
  n: number;
  jobs_per_s: number;
  seconds: number;
  vs_raw: number | null;
  cpu_seconds: Record<string, number>;
  cpu_ms_per_job: number;
  settings: Record<string, unknown>;
}

const packageVersion = (name: string): string =>
  JSON.parse(readFileSync(new URL(`../../../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;

export async function runPeers(options: PeersScenarioOptions): Promise<ScenarioResult> {
  const { n, log } = options;
  const jobs: PeerJob[] = Array.from({ length: n }, (_, x) => ({ expression: 'x * y', parameters: { x, y: 3 } }));
  const measured: Array<Omit<PeerSideResult, 'vs_raw'>> = [];
  const record = (side: string, seconds: number, cpu: Record<string, number>, settings: Record<string, unknown>) => {
    const totalCpu = Object.values(cpu).reduce((sum, value) => sum + value, 0);
    measured.push({
      scenario: 'peers',
      side,
      n,
      jobs_per_s: round(n / seconds),
      seconds: round(seconds, 3),
      cpu_seconds: cpu,
      cpu_ms_per_job: round((totalCpu * 1000) / n, 3),
      settings,
    });
  };

  log(`peers: chrysalis (queue-drain, ${n} jobs)`);
  const chrysalis = await options.chrysalis();
  record('chrysalis', chrysalis.seconds, chrysalis.cpu, {
    worker_concurrency: 64,
    enqueue: 'submitJobsBulk (1,000 rows and one addBulk per chunk)',
  });

  for (const [index, side] of peerSides({ redisUrl: options.redisUrl, queuePrefix: options.queuePrefix }).entries()) {
    log(`peers: ${side.name} (${n} jobs)`);
    const { seconds, cpu } = await measureSide(side, `${options.databasePrefix}_peer${index}`, jobs, options);
    record(side.name, seconds, cpu, side.settings);
  }

  const rate = (side: string) => measured.find((result) => result.side === side)?.jobs_per_s ?? 0;
  const raw = rate('raw');
  for (const result of measured) options.print({ ...result, vs_raw: raw ? round(result.jobs_per_s / raw, 3) : null });
  const best = comparedPeers.reduce((a, b) => (rate(b) > rate(a) ? b : a));
  const chrysalisRate = rate('chrysalis');
  const versusBest = chrysalisRate / rate(best);
  const versusRaw = chrysalisRate / raw;
  return {
    scenario: 'peers',
    n,
    unit: 'jobs/s',
    platform: chrysalisRate,
    baseline: rate(best),
    ratio: round(versusBest, 3),
    target: 'ratio >= 1.2 (best peer); >= 0.9 raw',
    met: versusBest >= 1.2 && versusRaw >= 0.9,
    details: {
      best_peer: best,
      ratios: {
        'chrysalis/best_peer': round(versusBest, 3),
        ...Object.fromEntries(
          measured.filter((result) => result.side !== 'raw').map((result) => [`${result.side}/raw`, round(result.jobs_per_s / raw, 3)]),
        ),
      },
      jobs_per_s: Object.fromEntries(measured.map((result) => [result.side, result.jobs_per_s])),
      durability,
      peer_versions: { 'graphile-worker': packageVersion('graphile-worker'), 'pg-boss': packageVersion('pg-boss') },
    },
  };
}

/** One side on a fresh database: its worker process up and settled, then the clock from the first enqueue to the n-th result row. */
async function measureSide(
  side: PeerSide,
  databaseName: string,
  jobs: PeerJob[],
  options: PeersScenarioOptions,
): Promise<{ seconds: number; cpu: Record<string, number> }> {
  const database = await createPeerDatabase(options.adminUrl, databaseName);
  try {
    const running = await side.start(database);
    try {
      const { postgres, redis, bench } = options.sharedCpu;
      const groups = { worker: () => cpuSeconds(running.pid), postgres, redis, bench };
      const { result: seconds, cpu } = await cpuBreakdown(groups, async () => {
        const started = performance.now();
        await running.enqueue(jobs);
        await waitForCount(() => database.resultCount(), jobs.length, 600_000);
        return (performance.now() - started) / 1000;
      });
      return { seconds, cpu };
    } finally {
      await running.stop();
    }
  } finally {
    await database.drop();
  }
}
