/**
 * The wait-latency scenario's stage breakdown: where one `Prefer: wait` invoke's milliseconds go. A second
 * API process with SERVER_TIMING on answers sequential invokes over one keep-alive connection (as in the
 * measured run; the timing costs a few µs a request, so that run goes through the untimed API). Its
 * `Server-Timing` header gives the API's own stages; the job's stage marks (lib/stage-marks.ts), stored
 * by the API and by the worker on the machine's monotonic clock, give what happens between the BullMQ add
 * and the notice: the worker's pick-up, the evaluation, the result write and the completion notice.
 */
import http from 'node:http';
import type { Redis } from 'ioredis';
import { stageMarksKey } from '../../lib/stage-marks.js';
import { collectGarbage, percentile, round, startChild, waitUntil } from './harness.js';

export interface WaitStagesContext {
  /** Environment of the platform's API process; this one differs in PORT and SERVER_TIMING. */
  platformEnv: Record<string, string>;
  port: number;
  redis: Redis;
  queuePrefix: string;
  key: string;
  substrateId: string;
  /** Unmeasured calls first, then measured ones. */
  warmUp: number;
  calls: number;
  /** The first parameter value; each call uses a new one, so none is answered from the cache. */
  offset: number;
}

/** Stage name → ms of one call. */
type Stages = Record<string, number>;

/** The stages in the order a call passes them (the brief of issue 21), each as "from the previous mark". */
export const waitStageOrder = [
  'http in (parse, headers, body, guard)',
  'auth',
  'limits',
  'cache lookup',
  'admission',
  'group-commit insert',
  'BullMQ add',
  'worker pick-up',
  'evaluation',
  'result write',
  'completion notice',
  'response',
] as const;

function timedCall(agent: http.Agent, url: string, body: string, key: string): Promise<{ id: string; clientMs: number; timing: Stages }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const request = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${key}`,
          prefer: 'wait=5',
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          const clientMs = performance.now() - started;
          const answer = JSON.parse(text) as { id?: string; state?: string };
          if (response.statusCode !== 200 || answer.state !== 'completed' || !answer.id) {
            return reject(new Error(`timed wait call answered ${response.statusCode} ${text.slice(0, 200)}`));
          }
          const timing: Stages = {};
          for (const part of String(response.headers['server-timing'] ?? '').split(',')) {
            const match = /^\s*([\w-]+);dur=([\d.]+)/.exec(part);
            if (match) timing[match[1]!] = Number(match[2]);
          }
          resolve({ id: answer.id, clientMs, timing });
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/**
 * The stages of a job between its BullMQ add and the API's notice, from its stage marks (ms since its request
 * began): the worker's pick-up, the evaluation, the result write and the completion notice.
 */
export function jobStages(marks: Record<string, number>): Stages {
  return {
    'worker pick-up': marks.picked! - marks.enqueued!,
    evaluation: marks.evaluated! - marks.picked!,
    'result write': marks.written! - marks.evaluated!,
    'completion notice': marks.noticed! - marks.written!,
  };
}

/**
 * One call's stages. API stages come from Server-Timing; the rest are differences of marks (ms since the
 * request began): enqueued and noticed (API), picked, evaluated and written (worker). Neighbours can
 * overlap, and then a stage shows negative: a worker may take the job before the API has read the add's
 * reply, and the notice leaves with the commit, which the API may hear before the worker reads its reply.
 */
function stagesOf(timing: Stages, marks: Record<string, number>): Stages {
  const api = (name: string) => timing[name] ?? 0;
  return {
    'http in (parse, headers, body, guard)': api('lifecycle') + api('headers') + api('body') + api('guard'),
    auth: api('auth'),
    limits: api('limits'),
    'cache lookup': api('cache'),
    admission: api('admission'),
    'group-commit insert': api('insert'),
    'BullMQ add': api('enqueue'),
    ...jobStages(marks),
    response: api('total') - marks.noticed!,
  };
}

export interface WaitStagesResult {
  calls: number;
  client_p50_ms: number;
  server_p50_ms: number;
  server_mean_ms: number;
  /** Median of each stage, in the order a call passes them. */
  stages_p50_ms: Record<string, number>;
  /** Mean of each stage: these add up to the server's mean (medians of a skewed stage do not). */
  stages_mean_ms: Record<string, number>;
  /** The server's mean less the stage means: routing and validation between the API's timed stages. */
  unattributed_mean_ms: number;
}

export async function measureWaitStages(ctx: WaitStagesContext, log: (message: string) => void): Promise<WaitStagesResult> {
  const api = startChild('api/main.ts', { ...ctx.platformEnv, PORT: String(ctx.port), SERVER_TIMING: 'true' }, 'timed api');
  const base = `http://127.0.0.1:${ctx.port}/api/v1`;
  try {
    await waitUntil(async () => (await fetch(`${base}/ready`).catch(() => null))?.status === 200, 60_000, 200);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const url = `${base}/substrates/${ctx.substrateId}/invoke`;
    const call = (x: number) => timedCall(agent, url, JSON.stringify({ parameters: { x, y: 11 } }), ctx.key);
    for (let i = 0; i < ctx.warmUp; i++) await call(ctx.offset + i);
    await collectGarbage(api.process.pid);
    const samples: Array<{ clientMs: number; serverMs: number; stages: Stages }> = [];
    for (let i = 0; i < ctx.calls; i++) {
      const { id, clientMs, timing } = await call(ctx.offset + ctx.warmUp + i);
      samples.push({ clientMs, serverMs: timing.total ?? 0, stages: await marksOf(ctx, id, timing) });
    }
    agent.destroy();
    const median = (values: number[]) =>
      percentile(
        [...values].sort((x, y) => x - y),
        50,
      );
    const mean = (values: number[]) => round(values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length), 3);
    const of = (name: string) => samples.map((s) => s.stages[name] ?? 0);
    const stagesP50 = Object.fromEntries(waitStageOrder.map((name) => [name, median(of(name))]));
    const stagesMean = Object.fromEntries(waitStageOrder.map((name) => [name, mean(of(name))]));
    const serverMean = mean(samples.map((s) => s.serverMs));
    const result: WaitStagesResult = {
      calls: samples.length,
      client_p50_ms: median(samples.map((s) => s.clientMs)),
      server_p50_ms: median(samples.map((s) => s.serverMs)),
      server_mean_ms: serverMean,
      stages_p50_ms: stagesP50,
      stages_mean_ms: stagesMean,
      unattributed_mean_ms: round(serverMean - Object.values(stagesMean).reduce((sum, ms) => sum + ms, 0), 3),
    };
    log(
      `wait-latency stages of ${result.calls} timed calls (client p50 ${result.client_p50_ms} ms; server p50 ${result.server_p50_ms} ms, mean ${serverMean} ms):`,
    );
    const column = (ms: number) => ms.toFixed(3).padStart(8);
    log(`  ${'stage'.padEnd(40)} ${'p50 ms'.padStart(8)} ${'mean ms'.padStart(8)}`);
    for (const name of waitStageOrder) log(`  ${name.padEnd(40)} ${column(stagesP50[name]!)} ${column(stagesMean[name]!)}`);
    log(`  ${'(between the API stages)'.padEnd(40)} ${''.padStart(8)} ${column(result.unattributed_mean_ms)}`);
    return result;
  } finally {
    await api.stop();
  }
}

/** The job's stored marks (the API stores its own just before it answers: a moment's retry covers the race). */
async function marksOf(ctx: WaitStagesContext, id: string, timing: Stages): Promise<Stages> {
  const wanted = ['enqueued', 'noticed', 'picked', 'evaluated', 'written'];
  for (let attempt = 0; attempt < 50; attempt++) {
    const stored = await ctx.redis.hgetall(stageMarksKey(ctx.queuePrefix, id));
    if (wanted.every((name) => stored[name] !== undefined)) {
      return stagesOf(timing, Object.fromEntries(Object.entries(stored).map(([name, value]) => [name, Number(value)])));
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`job ${id}: its stage marks were not stored`);
}
