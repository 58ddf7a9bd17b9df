import type { Redis } from 'ioredis';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type pg from 'pg';
import { createOrm, migrate } from '../../db/orm.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A child process running a TypeScript entry point under tsx (platform and baselines alike). */
export interface Child {
  process: ChildProcess;
  stop(): Promise<void>;
}

export function startChild(entry: string, env: NodeJS.ProcessEnv, name: string): Child {
  // BENCH_CPU_PROF=api,worker writes V8 CPU profiles of those children to .data/profiles (open in Chrome DevTools).
  const profiled = (process.env.BENCH_CPU_PROF ?? '').split(',').includes(name);
  const profileFlags = profiled ? ['--cpu-prof', `--cpu-prof-dir=${path.join(root, '.data', 'profiles')}`] : [];
  // BENCH_PRELOAD=/path/probe.mjs loads a probe module into every child first (e.g. one that logs who
  // starts an AsyncLocalStorage, which switches on promise hooks for the whole process).
  const preload = process.env.BENCH_PRELOAD ? ['--import', process.env.BENCH_PRELOAD] : [];
  const gcOnSignal = ['--expose-gc', '--import', pathToFileURL(path.join(root, 'ops', 'bench', 'gc-on-signal.ts')).href];
  const child = spawn(process.execPath, [...profileFlags, ...preload, '--import', 'tsx', ...gcOnSignal, path.join(root, entry)], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', process.env.BENCH_STDERR ? 'inherit' : 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  child.on('exit', (code, signal) => {
    if (code && code !== 0) process.stderr.write(`[bench] ${name} exited with ${code ?? signal}\n${stderr}\n`);
  });
  return {
    process: child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** Asks a process the bench started for a full garbage collection (see gc-on-signal.ts), then waits for it to settle. */
export async function collectGarbage(pid: number | undefined): Promise<void> {
  if (!pid) return;
  process.kill(pid, 'SIGUSR2');
  await new Promise((resolve) => setTimeout(resolve, 500));
}

/** Resident set size of a process in MiB (Linux /proc). */
export function rssMiB(pid: number | undefined): number {
  if (!pid) return 0;
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Math.round((Number(match[1]) / 1024) * 10) / 10 : 0;
}

export async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Waits until `count()` reaches `n`, reading it less often while the end is far: every read of a growing count
 * (`count(*)` of a results table) costs the database whose drain it times — ~2.5 ms at 50,000 rows here, so read
 * every 100 ms, up to 3 % of a core. The wait is half the time the count's rate so far says is left (20–500 ms;
 * 50 ms while nothing is counted), so the end is still seen within ~20 ms.
 */
export async function waitForCount(count: () => Promise<number>, n: number, timeoutMs: number): Promise<void> {
  const started = performance.now();
  for (;;) {
    const counted = await count();
    if (counted >= n) return;
    const elapsed = performance.now() - started;
    if (elapsed > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms (${counted} of ${n})`);
    // Nothing counted yet says nothing of the rate: read again soon.
    const left = counted > 0 ? ((n - counted) * elapsed) / counted : 100;
    await new Promise((resolve) => setTimeout(resolve, Math.min(500, Math.max(20, left / 2))));
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round((sorted[index] ?? 0) * 1000) / 1000;
}

/** POSTs JSON through `agent` (a keep-alive connection) and reads the whole answer. */
export function postJson(
  agent: http.Agent,
  url: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(payload);
  });
}

/** One JSON call to the API at `base`; a 4xx/5xx answer throws with its body. */
export async function apiJson(base: string, method: string, path: string, body?: unknown, token?: string) {
  const response = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status >= 400) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

export const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;

export interface ScenarioResult {
  scenario: string;
  n: number;
  unit: string;
  platform: number;
  baseline: number | null;
  ratio: number | null;
  target: string;
  met: boolean;
  details?: Record<string, unknown>;
}

/** Creates database `name` on the server `admin` is connected to (`adminUrl`) and migrates it; answers its URL. */
export async function createMigratedDatabase(admin: pg.Client, adminUrl: URL, name: string): Promise<string> {
  await admin.query(`create database ${name}`);
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  const orm = await createOrm(url, { poolMax: 2 });
  await migrate(orm);
  await orm.close();
  return url;
}

/** CPU seconds (user + system) a process and its threads have used so far (Linux /proc). */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** The machine's busy and total CPU time so far, in clock ticks (/proc/stat's first line). */
function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  // idle and iowait
  return { busy: total - fields[3]! - (fields[4] ?? 0), total };
}

/**
 * Waits until the machine is quiet — under `busyShare` of its CPU over half a second — or `maxMs` passed:
 * what one run left behind (PostgreSQL's autovacuum of the rows it updated, a trim pass) then weighs on
 * the next run of neither mode. Returns how long it waited, in ms.
 */
export async function settle(busyShare = 0.1, maxMs = 20_000): Promise<number> {
  const started = performance.now();
  let before = machineTicks();
  while (performance.now() - started < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = machineTicks();
    const share = (after.busy - before.busy) / Math.max(1, after.total - before.total);
    before = after;
    if (share < busyShare) break;
  }
  return Math.round(performance.now() - started);
}

/** CPU seconds used by every process whose command line matches `pattern` (e.g. all PostgreSQL backends). */
export function cpuSecondsMatching(pattern: RegExp): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (pattern.test(readFileSync(`/proc/${entry}/cmdline`, 'utf8'))) total += cpuSeconds(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return total;
}

/** Where CPU went during `run`: seconds per named process group. */
export async function cpuBreakdown<T>(
  groups: Record<string, () => number>,
  run: () => Promise<T>,
): Promise<{ result: T; cpu: Record<string, number> }> {
  const before = Object.fromEntries(Object.entries(groups).map(([name, read]) => [name, read()]));
  const result = await run();
  const cpu = Object.fromEntries(
    Object.entries(groups).map(([name, read]) => [name, Math.round((read() - (before[name] ?? 0)) * 100) / 100]),
  );
  return { result, cpu };
}

/** What Redis did meanwhile, from `INFO commandstats` and `INFO cpu`: calls per command, and CPU seconds (sys + user). */
export interface RedisActivity {
  calls: Record<string, number>;
  cpuSeconds: number;
}

export async function redisActivity(redis: { info(section: string): Promise<string> }): Promise<RedisActivity> {
  const calls: Record<string, number> = {};
  for (const match of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]!] = Number(match[2]);
  const cpu = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0);
  return { calls, cpuSeconds: field('used_cpu_sys') + field('used_cpu_user') };
}

/**
 * Redis commands and CPU per job between two readings: every command Redis ran meanwhile (this run's and any
 * other client's on the same server, so run on a quiet Redis), the ten commonest by name.
 */
export function redisCostPerJob(before: RedisActivity, after: RedisActivity, jobs: number) {
  const delta = Object.entries(after.calls)
    .map(([name, calls]) => [name, calls - (before.calls[name] ?? 0)] as const)
    .filter(([, calls]) => calls > 0)
    .sort((a, b) => b[1] - a[1]);
  const total = delta.reduce((sum, [, calls]) => sum + calls, 0);
  return {
    commands_per_job: round(total / jobs, 2),
    redis_cpu_us_per_job: round(((after.cpuSeconds - before.cpuSeconds) / jobs) * 1e6, 1),
    top_commands_per_job: Object.fromEntries(delta.slice(0, 10).map(([name, calls]) => [name, round(calls / jobs, 2)])),
  };
}

/**
 * The customer a bench run submits as: registered through `api`, $10,000 deposited, its compute service at
 * `tier` (default enterprise: no per-minute limit), an API key, one `x * y` substrate.
 */
export interface BenchCustomer {
  customerId: string;
  /** The API key (Bearer) of its compute service. */
  key: string;
  substrateId: string;
}

export async function benchCustomer(
  api: string,
  db: { query(text: string, values: unknown[]): Promise<{ rowCount: number | null }> },
  { name = 'bench', tier = 'enterprise' }: { name?: string; tier?: string } = {},
): Promise<BenchCustomer> {
  const json = (method: string, path: string, body?: unknown, token?: string) => apiJson(api, method, path, body, token);
  // Unique however many a run makes in one millisecond (the fairness scenario makes two).
  const email = `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.test`;
  await json('POST', '/auth/register', { email, password: 'bench password 1', accept_tos: true, tos_version: '1.0.0' });
  const { access_token: token } = await json('POST', '/auth/login', { email, password: 'bench password 1' });
  const { customer_id: customerId } = await json('GET', '/auth/me', undefined, token);
  // Money for the run's usage: a worker that starts later (cluster scenarios, fairness) runs billing at once,
  // and an empty balance suspended the customer mid-run, so every submit answered 402.
  await json('POST', '/billing/deposits', { amount_usd_cents: 1_000_000 }, token);
  // Before the key exists: its principal (tier included) is cached from its first use on.
  const { rowCount } = await db.query(`update service_instances set tier = $2 where customer_id = $1 and service_type = 'compute'`, [
    customerId,
    tier,
  ]);
  if (rowCount !== 1) throw new Error(`bench customer ${name}: its compute service was not found to set its tier`);
  const { key } = await json('POST', '/api-keys', { name, service_type: 'compute' }, token);
  const { substrate_id: substrateId } = await json('POST', '/substrates', { expression_type: 'expression', expression: 'x * y' }, key);
  return { customerId, key, substrateId };
}

/**
 * A numeric command-line option `--name=N` (`fallback` when absent); a value that is not an integer of at least
 * `min` stops the run with a message naming the option, instead of a NaN that fails much later.
 */
export function numberOption(args: readonly string[], name: string, fallback: number, min = 0): number {
  const raw = args.find((arg) => arg.startsWith(`--${name}=`))?.slice(`--${name}=`.length);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(value) || value < min)
    throw new Error(`--${name}=${raw}: expected an integer of at least ${min}`);
  return value;
}

/**
 * Redis memory of the keys matching `match`, grouped by their name with ids and numbers replaced by `*`: the
 * top `top` groups in MiB and keys, biggest first (`MEMORY USAGE` of each key; for a diagnosis, not a hot path).
 */
export async function redisMemoryByKeyShape(
  redis: Redis,
  match: string,
  top = 12,
): Promise<Array<{ shape: string; mib: number; keys: number }>> {
  const groups = new Map<string, { bytes: number; keys: number }>();
  for await (const keys of redis.scanStream({ match, count: 1000 }) as AsyncIterable<string[]>) {
    const sizes = await Promise.all(keys.map((key) => redis.memory('USAGE', key, 'SAMPLES', '0')));
    keys.forEach((key, i) => {
      const shape = key.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '*').replace(/\d+/g, '*');
      const group = groups.get(shape) ?? { bytes: 0, keys: 0 };
      group.bytes += Number(sizes[i] ?? 0);
      group.keys += 1;
      groups.set(shape, group);
    });
  }
  return [...groups]
    .sort(([, a], [, b]) => b.bytes - a.bytes)
    .slice(0, top)
    .map(([shape, group]) => ({ shape, mib: round(group.bytes / 1048576, 2), keys: group.keys }));
}

/** Leaves a shared Redis as a run found it: every key matching one of `patterns` goes. */
export async function deleteKeys(redis: Redis, patterns: readonly string[]): Promise<void> {
  for (const pattern of patterns) {
    for await (const keys of redis.scanStream({ match: pattern, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.unlink(...keys);
    }
  }
}

/** A SQL expression: the UUIDv7 of epoch milliseconds `ms` with random bits from the hex string `hex` (≥ 18 digits), as the API's ids. */
export const uuidv7Sql = (ms: string, hex: string) =>
  `(lpad(to_hex(${ms}), 12, '0') || '7' || substr(${hex}, 1, 3) || '8' || substr(${hex}, 4, 15))::uuid`;
