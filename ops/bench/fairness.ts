/**
 * Scenario `fairness` (issue 16): customer A (enterprise) submits a large backlog of invokes through
 * `POST /jobs/bulk` (1,000 a request); once it is queued, customer B (starter) runs 10 sequential
 * `Prefer: wait` invokes with distinct parameters. Run with FAIR_SHARING=true and =false (the FIFO
 * figure), each on an API, worker processes and a database of its own, both up side by side; in each mode
 * also A alone, for A's drain rate with and without B. The runs alternate modes in rounds (FIFO alone, fair
 * alone, FIFO with B, fair with B: each run follows one of the other mode, whose processes then idled), and
 * A's drain is compared like for like — fair alone over FIFO alone, fair with B over FIFO with B — each the
 * median of the rounds'; the lower of the two is the drain ratio. Prints B's latencies, A's drain rates, CPU and Redis commands per job, and
 * the Redis memory the queued backlog takes: once for a backlog submitted before any worker runs (all of it
 * queued: fair sharing's lanes against FIFO's BullMQ jobs), and in each run as it stands once A's last
 * request is answered.
 */
import http from 'node:http';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { stageMarksKey } from '../../lib/stage-marks.js';
import { jobStages } from './wait-stages.js';
import {
  apiJson,
  benchCustomer,
  cpuSeconds,
  cpuSecondsMatching,
  percentile,
  postJson,
  redisActivity,
  redisCostPerJob,
  redisMemoryByKeyShape,
  round,
  settle,
  startChild,
  waitUntil,
  type Child,
  type ScenarioResult,
} from './harness.js';

export interface FairnessContext {
  /** Environment of the platform's children (database, Redis, ports are replaced per mode). */
  platformEnv: Record<string, string>;
  /** A queue prefix per mode, so neither mode's keys (worker heartbeats included) meet the other's. */
  prefixOf: (fairSharing: boolean) => string;
  apiPort: number;
  db: pg.Pool;
  redis: Redis;
  /** Jobs A submits (a multiple of 1,000). */
  backlog: number;
  /** Worker processes per mode (`--fair-workers=N`; the must-show's "with two worker processes"). Default 1. */
  workerProcesses?: number;
  /**
   * A migrated database of its own for the FIFO mode (both modes run side by side, and a sweeper must not take the
   * other mode's rows for its own); `drop` removes it.
   */
  newDatabase: (suffix: string) => Promise<ModeDatabase>;
  /** Rounds of the four runs (FIFO alone, fair with B, fair alone, FIFO with B). Default 2. */
  rounds?: number;
  log: (message: string) => void;
}

export interface ModeDatabase {
  url: string;
  db: pg.Pool;
  drop(): Promise<void>;
}

const perRequest = 1000;
const bCalls = 10;

interface Run {
  a_drain_seconds: number;
  a_drain_jobs_per_s: number;
  /** Redis used memory just after A's last bulk request, less before its first, and A's jobs unfinished then. */
  redis_backlog_mib: number;
  a_unfinished_after_submit: number;
  /**
   * CPU per job of A's backlog over the whole run (submit to drained), by process group, in µs. PostgreSQL's is
   * read from the backends alive at each end of the run (one that a pool closed meanwhile takes its CPU with it):
   * a rough figure, at times below zero.
   */
  cpu_us_per_job: Record<string, number>;
  /** Redis commands per job over the whole run (every client's), and the commonest by name (EVALSHA: the scripts). */
  redis_commands_per_job: number;
  redis_top_commands_per_job: Record<string, number>;
  b_latencies_ms?: number[];
  b_max_ms?: number;
  b_median_ms?: number;
  /** B's jobs, from their rows: created → started (waiting for a worker slot) and started → finished, in ms. */
  b_waited_ms?: number[];
  b_ran_ms?: number[];
  /** BENCH_B_STAGES=1: where B's calls' milliseconds went (median of each stage, from the job's stage marks). */
  b_stages_p50_ms?: Record<string, number>;
  /** B's median with nothing else queued (3 calls just before A submits): this machine's floor, as loaded as it is now. */
  b_idle_median_ms?: number;
  /** A's jobs unfinished when B's first call started and when its last ended. */
  a_unfinished_at_b_start?: number;
  a_unfinished_at_b_end?: number;
}

const usedMemory = async (redis: Redis) => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);

const call = apiJson;

const stagesWanted = process.env.BENCH_B_STAGES === '1';

/**
 * The stages of B's timed calls, from their stage marks (ms since each request began; `jobStages`, as
 * wait-latency reads them), plus the submit up to the BullMQ add: the median of each. Calls whose marks are
 * incomplete (the API stores its own just before it answers) are left out.
 */
async function bStages(redis: Redis, prefix: string, ids: readonly string[]): Promise<Record<string, number>> {
  const wanted = ['enqueued', 'picked', 'evaluated', 'written', 'noticed'];
  const calls: Array<Record<string, number>> = (await Promise.all(ids.map((id) => redis.hgetall(stageMarksKey(prefix, id)))))
    .filter((stored) => wanted.every((name) => stored[name] !== undefined))
    .map((stored) => Object.fromEntries(wanted.map((name) => [name, Number(stored[name])])))
    .map((marks) => ({ 'submit (insert, admission, add)': marks.enqueued!, ...jobStages(marks) }));
  const medianOf = (name: string) => round(median(calls.map((stages) => stages[name]!)), 2);
  return Object.fromEntries(Object.keys(calls[0] ?? {}).map((name) => [name, medianOf(name)]));
}

/** One mode's platform, started: its queued-backlog figure, and a run of A's backlog (with or without B) at a time. */
interface Mode {
  heldBacklogMiB: number;
  run(withB: boolean): Promise<Run>;
  stop(): Promise<void>;
}

/**
 * Starts one mode's API and workers on `database` and measures A's first backlog queued before its workers start
 * (then drained). The runs come later, alternated with the other mode's, so both meet the same machine.
 */
async function startMode(context: FairnessContext, fairSharing: boolean, database: Pick<ModeDatabase, 'url' | 'db'>): Promise<Mode> {
  const { redis, backlog, log } = context;
  const db = database.db;
  const port = context.apiPort + (fairSharing ? 1 : 2);
  const api = `http://127.0.0.1:${port}/api/v1`;
  const env = {
    ...context.platformEnv,
    DATABASE_URL: database.url,
    PORT: String(port),
    QUEUE_PREFIX: context.prefixOf(fairSharing),
    FAIR_SHARING: String(fairSharing),
    // Ready once this mode's worker beats: B's first call must not wait for the worker to start.
    READY_REQUIRES_WORKER: 'true',
    // B's `Prefer: wait` calls leave their stage marks (lib/stage-marks.ts) for `bStages`.
    ...(stagesWanted ? { SERVER_TIMING: 'true' } : {}),
  };
  const workerProcesses = context.workerProcesses ?? 1;
  // The API first, alone: A's first backlog is measured while nothing consumes it.
  const children: Child[] = [startChild('api/main.ts', env, 'api')];
  try {
    await waitUntil(async () => (await fetch(`${api}/health`).catch(() => null))?.status === 200, 60_000, 200);
    const a = await benchCustomer(api, db, { name: 'fair-a', tier: 'enterprise' });
    const b = await benchCustomer(api, db, { name: 'fair-b', tier: 'starter' });
    // A's rows still to run: one predicate (the customer's partial index of unfinished rows) for the counts and for
    // the drain's end, which is polled every 100 ms: an EXISTS stops at A's first unfinished row, where a count read
    // up to 40,000 index entries a poll, PostgreSQL CPU the bench took from the drain it timed.
    const aUnfinished = `from jobs where customer_id = $1 and state in ('queued', 'delayed', 'active')`;
    const unfinishedOfA = async () => Number((await db.query(`select count(*) as n ${aUnfinished}`, [a.customerId])).rows[0].n);
    const aDrained = async () => !(await db.query(`select exists (select 1 ${aUnfinished}) as left`, [a.customerId])).rows[0].left;
    const submitBacklog = async (round_: number) => {
      for (let r = 0; r < backlog / perRequest; r++) {
        // Parameters of their own in every run, so no job is answered from the invocation cache.
        const jobs = Array.from({ length: perRequest }, (_, i) => ({
          type: 'invoke',
          payload: { substrate_id: a.substrateId, parameters: { x: r * perRequest + i, y: 1000 + round_ } },
        }));
        await call(api, 'POST', '/jobs/bulk', { jobs }, a.key);
      }
    };

    // Redis memory for A's whole backlog, every job of it queued (no worker runs yet): held in lanes, or in BullMQ.
    const beforeHeld = await usedMemory(redis);
    // Parameters of round 0, which no run uses (each mode has its own cache as well as its own database).
    await submitBacklog(0);
    const heldBacklogMiB = round(((await usedMemory(redis)) - beforeHeld) / 1048576, 2);
    if (process.env.BENCH_REDIS_KEYS === '1')
      log(`Redis for A's queued backlog: keys ${JSON.stringify(await redisMemoryByKeyShape(redis, `${context.prefixOf(fairSharing)}:*`))}`);
    children.push(
      ...Array.from({ length: workerProcesses }, (_, i) =>
        startChild('workers/main.ts', env, workerProcesses > 1 ? `worker${i + 1}` : 'worker'),
      ),
    );
    await waitUntil(async () => (await fetch(`${api}/ready`).catch(() => null))?.status === 200, 60_000, 200);
    await waitUntil(aDrained, 1_200_000, 100);
    log(`${fairSharing ? 'fair sharing' : 'FIFO'}: Redis for A's queued backlog of ${backlog}: ${heldBacklogMiB} MiB`);
    const connection = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // Where a drain's CPU goes, per job: the fair path's extra work (admission, releases and their row reads and
    // adds in the workers) against FIFO's (the API's adds), with Redis and PostgreSQL.
    const cpuGroups: Record<string, () => number> = {
      api: () => cpuSeconds(children[0]!.process.pid),
      workers: () => children.slice(1).reduce((sum, child) => sum + cpuSeconds(child.process.pid), 0),
      postgres: () => cpuSecondsMatching(/^postgres/),
      redis: () => cpuSecondsMatching(/^redis-server/),
    };

    const bJobs: string[] = [];
    /** B's call: `Prefer: wait`, then (past the wait, as under FIFO) the row read until it is final. */
    const bCall = async (x: number) => {
      const started = performance.now();
      const { status, body } = await postJson(
        connection,
        `${api}/substrates/${b.substrateId}/invoke`,
        { parameters: { x, y: 7 } },
        { authorization: `Bearer ${b.key}`, prefer: 'wait=30' },
      );
      const answer = JSON.parse(body) as { id?: string; state?: string };
      if (status >= 400 || !answer.id) throw new Error(`B's call answered ${status} ${body}`);
      bJobs.push(answer.id);
      if (answer.state !== 'completed') {
        await waitUntil(
          async () => (await db.query(`select state from jobs where id = $1`, [answer.id])).rows[0]?.state === 'completed',
          600_000,
          20,
        );
      }
      return performance.now() - started;
    };

    const run = async (withB: boolean, round_: number): Promise<Run> => {
      const idle: number[] = [];
      if (withB) for (let i = 0; i < 3; i++) idle.push(await bCall(round_ * 100 + 50 + i));
      const before = await usedMemory(redis);
      const cpuBefore = Object.fromEntries(Object.entries(cpuGroups).map(([name, read]) => [name, read()]));
      const redisBefore = await redisActivity(redis);
      const started = performance.now();
      await submitBacklog(round_);
      const redisBacklog = (await usedMemory(redis)) - before;
      // BENCH_REDIS_KEYS=1: what the backlog's Redis memory is made of (key groups of this mode's prefix, clients).
      if (process.env.BENCH_REDIS_KEYS === '1') {
        const clients = /mem_clients_normal:(\d+)/.exec(await redis.info('memory'))?.[1];
        log(
          `Redis after A's submit: clients ${round(Number(clients ?? 0) / 1048576, 1)} MiB; keys ${JSON.stringify(await redisMemoryByKeyShape(redis, `${context.prefixOf(fairSharing)}:*`))}`,
        );
      }
      const unfinishedAfterSubmit = await unfinishedOfA();
      const result: Partial<Run> = {};
      if (withB) {
        result.a_unfinished_at_b_start = unfinishedAfterSubmit;
        const latencies: number[] = [];
        bJobs.length = 0;
        for (let i = 0; i < bCalls; i++) latencies.push(round(await bCall(round_ * 100 + i), 1));
        const phases = await db.query(
          `select extract(epoch from started_at - created_at) * 1000 as waited, extract(epoch from finished_at - started_at) * 1000 as ran
             from jobs where id = any($1::uuid[]) order by created_at`,
          [bJobs],
        );
        result.b_waited_ms = phases.rows.map((row: { waited: string }) => round(Number(row.waited), 1));
        result.b_ran_ms = phases.rows.map((row: { ran: string }) => round(Number(row.ran), 1));
        if (stagesWanted) result.b_stages_p50_ms = await bStages(redis, context.prefixOf(fairSharing), bJobs);
        result.a_unfinished_at_b_end = await unfinishedOfA();
        const sorted = [...latencies].sort((x, y) => x - y);
        Object.assign(result, {
          b_latencies_ms: latencies,
          b_max_ms: sorted.at(-1),
          b_median_ms: round(percentile(sorted, 50), 1),
          b_idle_median_ms: round(
            percentile(
              [...idle].sort((x, y) => x - y),
              50,
            ),
            1,
          ),
        });
      }
      await waitUntil(aDrained, 1_200_000, 100);
      const seconds = (performance.now() - started) / 1000;
      const cpuUsPerJob = Object.fromEntries(
        Object.entries(cpuGroups).map(([name, read]) => [name, round(((read() - cpuBefore[name]!) / backlog) * 1e6)]),
      );
      return {
        a_drain_seconds: round(seconds, 2),
        a_drain_jobs_per_s: round(backlog / seconds),
        redis_backlog_mib: round(redisBacklog / 1048576, 1),
        a_unfinished_after_submit: unfinishedAfterSubmit,
        cpu_us_per_job: cpuUsPerJob,
        ...redisCommands(redisCostPerJob(redisBefore, await redisActivity(redis), backlog)),
        ...result,
      };
    };

    const mode = `fairness (FAIR_SHARING=${fairSharing}, ${workerProcesses} worker process${workerProcesses > 1 ? 'es' : ''})`;
    let runs = 0;
    return {
      heldBacklogMiB,
      async run(withB) {
        log(withB ? `${mode}: A's ${backlog} invokes, then B's ${bCalls} Prefer: wait calls` : `${mode}: A alone, ${backlog} invokes`);
        const result = await run(withB, ++runs);
        log(`${mode}: ${withB ? 'with B' : 'A alone'} ${JSON.stringify(result)}`);
        return result;
      },
      async stop() {
        connection.destroy();
        for (const child of children.reverse()) await child.stop();
      },
    };
  } catch (error) {
    for (const child of children.reverse()) await child.stop();
    throw error;
  }
}

const median = (values: number[]) =>
  percentile(
    [...values].sort((x, y) => x - y),
    50,
  );

export async function runFairness(context: FairnessContext): Promise<ScenarioResult> {
  const fifoDatabase = await context.newDatabase('fifo');
  let fifo: Mode | undefined;
  let fair: Mode | undefined;
  const rounds: Array<{ fifoAlone: Run; fairWithB: Run; fairAlone: Run; fifoWithB: Run }> = [];
  try {
    // FIFO's processes start (and drain their held backlog) first, so the first run, FIFO alone, follows the other
    // mode's drain as every later run does. Started the other way round, FIFO alone followed FIFO's own drain, warm,
    // and the first round's fair-over-FIFO ratio was the lowest of three in 6 of 8 runs (0.72–0.86).
    fifo = await startMode(context, false, fifoDatabase);
    fair = await startMode(context, true, { url: context.platformEnv.DATABASE_URL!, db: context.db });
    // Both modes' processes stay up and the runs alternate, so a machine that speeds up or slows down over the
    // minutes of the scenario weighs on both sides of each round's ratio alike.
    // Each run starts on a quiet machine (`settle`), so what one run leaves behind (autovacuum of the rows it
    // updated, a trim pass) does not weigh on the next.
    const quietly = async (run: () => Promise<Run>) => {
      await settle();
      return run();
    };
    // Every run follows one of the other mode: a mode's first run after its processes idled drained ~10 % slower
    // (FIFO's too), and in the order FIFO alone, fair with B, fair alone, FIFO with B only the runs with B paid it.
    for (let r = 0; r < (context.rounds ?? 2); r++) {
      const fifoAlone = await quietly(() => fifo!.run(false));
      const fairAlone = await quietly(() => fair!.run(false));
      const fifoWithB = await quietly(() => fifo!.run(true));
      const fairWithB = await quietly(() => fair!.run(true));
      rounds.push({ fifoAlone, fairWithB, fairAlone, fifoWithB });
    }
  } finally {
    await fifo?.stop();
    await fair?.stop();
    await fifoDatabase.drop();
  }
  const fairB = rounds.flatMap((r) => r.fairWithB.b_latencies_ms!);
  const maxMs = Math.max(...fairB);
  const medianMs = round(median(fairB), 1);
  const fifoMaxMs = Math.max(...rounds.map((r) => r.fifoWithB.b_max_ms!));
  const aloneRatios = rounds.map((r) => round(r.fairAlone.a_drain_jobs_per_s / r.fifoAlone.a_drain_jobs_per_s, 3));
  const withBRatios = rounds.map((r) => round(r.fairWithB.a_drain_jobs_per_s / r.fifoWithB.a_drain_jobs_per_s, 3));
  const drainRatio = Math.min(median(aloneRatios), median(withBRatios));
  return {
    scenario: 'fairness',
    n: context.backlog,
    unit: 'ms B max',
    platform: maxMs,
    baseline: fifoMaxMs,
    ratio: round(maxMs / fifoMaxMs, 3),
    target: "B max <= 1000, median <= 100; A's drain alone and with B >= 0.9 x FIFO's (medians of rounds)",
    met: maxMs <= 1000 && medianMs <= 100 && drainRatio >= 0.9,
    details: {
      worker_processes: context.workerProcesses ?? 1,
      // Redis for A's whole backlog queued with no worker running: fair sharing's lanes against FIFO's BullMQ jobs.
      redis_queued_backlog_mib_fair: fair!.heldBacklogMiB,
      redis_queued_backlog_mib_fifo: fifo!.heldBacklogMiB,
      redis_queued_backlog_fair_over_fifo: round(fair!.heldBacklogMiB / fifo!.heldBacklogMiB, 3),
      b_median_ms_fair: medianMs,
      b_idle_median_ms_fair: round(median(rounds.map((r) => r.fairWithB.b_idle_median_ms!)), 1),
      b_median_ms_fifo: round(median(rounds.flatMap((r) => r.fifoWithB.b_latencies_ms!)), 1),
      // A's drain, fair over FIFO: the lower of the two medians below.
      a_drain_fair_over_fifo: round(drainRatio, 3),
      a_drain_alone_fair_over_fifo_per_round: aloneRatios,
      a_drain_with_b_fair_over_fifo_with_b_per_round: withBRatios,
      // The comparison this scenario printed before (fair with B over FIFO alone), for continuity.
      a_drain_with_b_fair_over_fifo_alone_per_round: rounds.map((r) =>
        round(r.fairWithB.a_drain_jobs_per_s / r.fifoAlone.a_drain_jobs_per_s, 3),
      ),
      rounds,
    },
  };
}

function redisCommands(cost: ReturnType<typeof redisCostPerJob>): Pick<Run, 'redis_commands_per_job' | 'redis_top_commands_per_job'> {
  return { redis_commands_per_job: cost.commands_per_job, redis_top_commands_per_job: cost.top_commands_per_job };
}
