/**
 * The request-latency scenario: where an API request's milliseconds go. p50/p99 of `GET /health`, an
 * authenticated `GET /jobs/:id`, `POST /jobs` and a 429, sequential (one keep-alive connection) and at 64
 * connections, beside a bare `node:http` server on the same box. The API here is a second API process
 * started with SERVER_TIMING on, so each answer also says how long the server took (`total`) and in which
 * stage (auth, in-flight lease, rate limit, route…); its tier budgets are scaled up (RATE_LIMIT_MULTIPLIER)
 * so the measured calls pass the rate limiter instead of skipping it (pro tier) without running out.
 */
import http from 'node:http';
import type { Redis } from 'ioredis';
import { customerLimitKey } from '../../queue/tier-budgets.js';
import { apiJson, collectGarbage, percentile, round, settle, startChild, waitUntil, type Child, type ScenarioResult } from './harness.js';

export interface RequestLatencyContext {
  /** Environment of the platform's API process; the scenario's own API differs in PORT and the two settings above. */
  platformEnv: Record<string, string>;
  port: number;
  barePort: number;
  redis: Redis;
  queuePrefix: string;
  /** Promotes a customer's compute service to `tier` (a database write). */
  setTier(customerId: string, tier: 'starter' | 'pro'): Promise<void>;
  /** Holds the worker back while jobs are submitted, so its work does not share the CPUs with the requests measured. */
  pauseWorker(): Promise<void>;
  resumeWorker(): Promise<void>;
  sequential: number;
  concurrent: number;
  log(message: string): void;
}

interface Call {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** The status every measured answer must have. */
  status: number;
}

interface Sample {
  clientMs: number;
  serverMs: number | null;
  stages: Record<string, number>;
}

function send(agent: http.Agent, base: string, call: Call): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const headers: Record<string, string | number> = { ...call.headers };
    if (call.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(call.body);
    }
    const request = http.request(base + call.path, { method: call.method, agent, headers }, (response) => {
      response.resume();
      response.on('end', () => {
        const clientMs = performance.now() - started;
        if (response.statusCode !== call.status) return reject(new Error(`${call.method} ${call.path} answered ${response.statusCode}`));
        const stages: Record<string, number> = {};
        for (const part of String(response.headers['server-timing'] ?? '').split(',')) {
          const match = /^\s*([\w-]+);dur=([\d.]+)/.exec(part);
          if (match) stages[match[1]!] = Number(match[2]);
        }
        const { total, ...rest } = stages;
        resolve({ clientMs, serverMs: total ?? null, stages: rest });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(call.body);
  });
}

/** `count` calls over `connections` keep-alive connections, each connection one call at a time. */
async function run(base: string, call: Call | ((i: number) => Call), connections: number, count: number): Promise<Sample[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const samples: Sample[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < count) {
        const i = next++;
        samples.push(await send(agent, base, typeof call === 'function' ? call(i) : call));
      }
    }),
  );
  agent.destroy();
  return samples;
}

interface Figures {
  client_p50_ms: number;
  client_p99_ms: number;
  server_p50_ms?: number;
  server_p99_ms?: number;
  /** Median of each server stage, in ms. */
  stages_p50_ms?: Record<string, number>;
}

function figures(samples: Sample[]): Figures {
  const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
  const client = sorted(samples.map((s) => s.clientMs));
  const server = sorted(samples.flatMap((s) => (s.serverMs === null ? [] : [s.serverMs])));
  const out: Figures = { client_p50_ms: percentile(client, 50), client_p99_ms: percentile(client, 99) };
  if (server.length === 0) return out;
  out.server_p50_ms = percentile(server, 50);
  out.server_p99_ms = percentile(server, 99);
  const names = new Set(samples.flatMap((s) => Object.keys(s.stages)));
  out.stages_p50_ms = Object.fromEntries([...names].map((name) => [name, percentile(sorted(samples.map((s) => s.stages[name] ?? 0)), 50)]));
  return out;
}

const call = (base: string, method: string, path: string, body?: unknown, token?: string): Promise<Record<string, unknown>> =>
  apiJson(base, method, path, body, token);

/** A customer with a compute API key at `tier` and a substrate to invoke. */
async function customer(base: string, ctx: RequestLatencyContext, tier: 'starter' | 'pro') {
  const email = `latency-${tier}-${Date.now()}@example.test`;
  await call(base, 'POST', '/auth/register', { email, password: 'bench password 1', accept_tos: true, tos_version: '1.0.0' });
  const { access_token: token } = (await call(base, 'POST', '/auth/login', { email, password: 'bench password 1' })) as {
    access_token: string;
  };
  const { customer_id: customerId } = (await call(base, 'GET', '/auth/me', undefined, token)) as { customer_id: string };
  await ctx.setTier(customerId, tier);
  // The key is made after the tier changed, so the API caches its principal at that tier.
  const { key } = (await call(base, 'POST', '/api-keys', { name: 'latency', service_type: 'compute' }, token)) as { key: string };
  const { substrate_id: substrateId } = (await call(
    base,
    'POST',
    '/substrates',
    { expression_type: 'expression', expression: 'x * y' },
    key,
  )) as {
    substrate_id: string;
  };
  return { customerId, key, substrateId };
}

export async function runRequestLatency(ctx: RequestLatencyContext): Promise<ScenarioResult> {
  const base = `http://127.0.0.1:${ctx.port}/api/v1`;
  const api = startChild(
    'api/main.ts',
    {
      ...ctx.platformEnv,
      PORT: String(ctx.port),
      SERVER_TIMING: 'true',
      RATE_LIMIT_MULTIPLIER: '1000',
      TIER_MAX_IN_FLIGHT: 'starter=10,pro=200,enterprise=200',
    },
    'timed api',
  );
  const bare: Child = startChild('ops/bench/baseline/bare-http.ts', { PORT: String(ctx.barePort) }, 'bare http');
  try {
    await waitUntil(async () => (await fetch(`${base}/ready`).catch(() => null))?.status === 200, 60_000, 200);
    await waitUntil(async () => (await fetch(`http://127.0.0.1:${ctx.barePort}/`).catch(() => null))?.status === 200, 30_000, 100);
    const pro = await customer(base, ctx, 'pro');
    const limited = await customer(base, ctx, 'starter');
    // The starter customer's write budget is spent for the next ten minutes: each of its POSTs is a 429.
    const budgetKey = `${ctx.queuePrefix}:ratelimit:tier-starter:${customerLimitKey(limited.customerId, 'compute')}`;
    await ctx.redis.set(budgetKey, 1_000_000_000, 'PX', 600_000);

    const submit = (customerKey: string, substrateId: string, x: number, status: number): Call => ({
      method: 'POST',
      path: '/jobs',
      headers: { authorization: `Bearer ${customerKey}` },
      body: JSON.stringify({ type: 'invoke', payload: { substrate_id: substrateId, parameters: { x, y: 3 } } }),
      status,
    });
    const { id: jobId } = (await call(base, 'POST', '/jobs', JSON.parse(submit(pro.key, pro.substrateId, 1, 202).body!), pro.key)) as {
      id: string;
    };
    const calls: Record<string, { url: string; call: Call | ((i: number) => Call) }> = {
      'bare http': { url: `http://127.0.0.1:${ctx.barePort}`, call: { method: 'GET', path: '/', status: 200 } },
      'GET /health': { url: base, call: { method: 'GET', path: '/health', status: 200 } },
      'GET /jobs/:id': {
        url: base,
        call: { method: 'GET', path: `/jobs/${jobId}`, headers: { authorization: `Bearer ${pro.key}` }, status: 200 },
      },
      'POST /jobs': { url: base, call: (i) => submit(pro.key, pro.substrateId, i, 202) },
      'POST /jobs 429': { url: base, call: (i) => submit(limited.key, limited.substrateId, i, 429) },
    };

    await ctx.pauseWorker();
    const rows: Record<string, { sequential: Figures; c64: Figures }> = {};
    try {
      for (const [name, { url, call: what }] of Object.entries(calls)) {
        // Warm-up as large as the sequential run, so the JIT has settled on the path before it is measured.
        await run(url, what, 1, ctx.sequential);
        await collectGarbage(name === 'bare http' ? bare.process.pid : api.process.pid);
        // At rest: what ran before (an earlier scenario's autovacuum, the last call's 64-connection run) is not measured.
        await settle(0.1, 10_000);
        const sequential = figures(await run(url, what, 1, ctx.sequential));
        const c64 = figures(await run(url, what, 64, ctx.concurrent));
        rows[name] = { sequential, c64 };
        const show = (f: Figures) =>
          `p50 ${f.client_p50_ms} p99 ${f.client_p99_ms}` +
          (f.server_p50_ms === undefined ? '' : ` (server p50 ${f.server_p50_ms} p99 ${f.server_p99_ms})`);
        ctx.log(`request-latency: ${name.padEnd(15)} sequential ${show(sequential)}; 64 connections ${show(c64)}`);
        if (sequential.stages_p50_ms)
          ctx.log(`request-latency: ${name.padEnd(15)} sequential stage p50s ${JSON.stringify(sequential.stages_p50_ms)}`);
      }
    } finally {
      await ctx.resumeWorker();
    }
    const getJob = rows['GET /jobs/:id']!.sequential;
    const postJob = rows['POST /jobs']!.sequential;
    const bareSequential = rows['bare http']!.sequential;
    const getServer = getJob.server_p50_ms ?? Number.NaN;
    const postServer = postJob.server_p50_ms ?? Number.NaN;
    return {
      scenario: 'request-latency',
      n: ctx.sequential,
      unit: 'ms p50',
      platform: getServer,
      baseline: bareSequential.client_p50_ms,
      ratio: round(getJob.client_p50_ms / bareSequential.client_p50_ms, 3),
      target: 'GET /jobs/:id server p50 <= 1 ms; POST /jobs server p50 <= 2 ms',
      met: getServer <= 1 && postServer <= 2,
      details: rows,
    };
  } finally {
    await api.stop();
    await bare.stop();
  }
}
