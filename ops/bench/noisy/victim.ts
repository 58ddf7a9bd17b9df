import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { Redis } from 'ioredis';
import { call } from './http.js';
import { createSubstrate, type Customer } from './customers.js';
import { victimCall, type ProbeReport, type ProbeSetup, type VictimCall } from './victim-probe.js';

export type { VictimCall } from './victim-probe.js';

export interface VictimSample {
  calls: VictimCall[];
  /** `/health` answer times (ms) and statuses, probed every `healthEveryMs` throughout. */
  health: Array<{ ms: number; status: number }>;
  /** Redis `used_memory` readings (bytes) taken throughout. */
  redisUsedBytes: number[];
  /** Errors Redis answered to the probe's writes (e.g. OOM under `noeviction`). */
  redisWriteErrors: string[];
}

/** Pause between the victim's calls: a steady trickle, well inside its tier's per-minute budget. */
const victimGapMs = 100;
const healthEveryMs = 100;
const redisEveryMs = 500;

/** The probe thread's module in the running build: `.ts` under tsx and vitest, `.js` once built. */
const probeModule = new URL(`./victim-probe.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url);

/**
 * The victim: a customer doing trivial work (`x * y`) with distinct parameters every call — a cached
 * invocation never reaches a worker and would prove nothing — one `Prefer: wait=30` invoke at a time,
 * while `/health` and Redis are probed beside it. The timed calls (invokes and `/health`) run in a
 * thread of their own (victim-probe.ts), away from the attacker's load generator on this thread. Its
 * webhook receiver is a loopback server.
 */
export class Victim {
  private counter = Math.floor(Math.random() * 1e9);
  private receiver: http.Server | null = null;
  private receiverUrl = '';
  private readonly arrivals = new Map<string, (at: number) => void>();
  private readonly arrived = new Map<string, number>();
  private probe: Worker | null = null;

  private constructor(
    readonly api: string,
    readonly customer: Customer,
    readonly substrateId: string,
    private readonly redis: Redis,
    private readonly probeKey: string,
  ) {}

  static async start(api: string, customer: Customer, redis: Redis, probeKey: string): Promise<Victim> {
    const victim = new Victim(api, customer, await createSubstrate(api, customer, 'x * y'), redis, probeKey);
    await victim.listen();
    await victim.startProbe();
    return victim;
  }

  /** Starts the thread that times the victim's calls, and waits until it has loaded. */
  private async startProbe(): Promise<void> {
    const setup: ProbeSetup = {
      role: 'victim-probe',
      api: this.api,
      key: this.customer.key,
      substrateId: this.substrateId,
      // Its own range of `x`, apart from this thread's (warm-up invokes, webhook probes).
      firstX: 2e9 + Math.floor(Math.random() * 1e9),
      gapMs: victimGapMs,
      healthEveryMs,
    };
    // From source, a fixed one-line entry registers tsx in the thread and imports the module: Node 20 takes
    // neither a `.ts` entry nor `--import tsx` in a Worker's execArgv ("Unknown file extension").
    const fromSource = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(probeModule.href)}); });`;
    const probe = probeModule.pathname.endsWith('.ts')
      ? new Worker(fromSource, { eval: true, workerData: setup })
      : new Worker(probeModule, { workerData: setup });
    this.probe = probe;
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.once('exit', (code) => reject(new Error(`the victim's probe thread exited (${code}) before it was ready`)));
      probe.once('message', (report: ProbeReport) => (report.type === 'ready' ? resolve() : reject(new Error('unexpected probe report'))));
    });
    probe.removeAllListeners('exit');
    probe.removeAllListeners('error');
  }

  private async listen(): Promise<void> {
    this.receiver = http.createServer((req, res) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (text += chunk));
      req.on('end', () => {
        res.writeHead(204).end();
        const at = performance.now();
        for (const [jobId, resolve] of this.arrivals) if (text.includes(jobId)) resolve(at);
        for (const match of text.matchAll(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g)) {
          if (!this.arrived.has(match[0])) this.arrived.set(match[0], at);
        }
      });
    });
    await new Promise<void>((resolve) => this.receiver!.listen(0, '127.0.0.1', resolve));
    this.receiverUrl = `http://127.0.0.1:${(this.receiver!.address() as AddressInfo).port}/hook`;
  }

  /** One `Prefer: wait=30` invoke with parameters never used before. */
  async invoke(): Promise<VictimCall> {
    const x = this.counter++;
    const answer = await call(this.api, 'POST', `/substrates/${this.substrateId}/invoke`, {
      token: this.customer.key,
      body: { parameters: { x, y: 7 } },
      headers: { prefer: 'wait=30' },
      timeoutMs: 60_000,
    });
    return victimCall(answer);
  }

  /**
   * Measures until `until` resolves: invokes one after another, `/health` and Redis beside them.
   * Resolves with everything sampled.
   */
  async measure(until: Promise<unknown>): Promise<VictimSample> {
    const probe = this.probe;
    if (!probe) throw new Error('the victim has no probe thread (Victim.start makes it)');
    let done = false;
    const timed = new Promise<Extract<ProbeReport, { type: 'sample' }>>((resolve, reject) => {
      const onMessage = (report: ProbeReport) => {
        if (report.type !== 'sample') return;
        probe.off('message', onMessage);
        probe.off('error', reject);
        resolve(report);
      };
      probe.on('message', onMessage);
      probe.once('error', reject);
    });
    probe.postMessage({ type: 'measure' });
    const stop = () => {
      done = true;
      probe.postMessage({ type: 'stop' });
    };
    until.then(stop, stop);
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const redisUsedBytes: number[] = [];
    const redisWriteErrors: string[] = [];
    const redis = (async () => {
      while (!done) {
        try {
          redisUsedBytes.push(Number(/used_memory:(\d+)/.exec(await this.redis.info('memory'))?.[1] ?? 0));
          await this.redis.set(this.probeKey, String(Date.now()), 'EX', 60);
        } catch (error) {
          redisWriteErrors.push(String(error).slice(0, 200));
        }
        await pause(redisEveryMs);
      }
    })();
    const [{ calls, health }] = await Promise.all([timed, until.catch(() => undefined), redis]);
    return { calls, health, redisUsedBytes, redisWriteErrors };
  }

  /**
   * Submits one invoke with the victim's own `webhook_url` and resolves with the milliseconds until its
   * delivery arrived, or null if none arrived within `waitMs`.
   */
  async webhookProbe(waitMs: number): Promise<{ ms: number | null; status: number }> {
    const submitted = performance.now();
    const answer = await call(this.api, 'POST', '/jobs', {
      token: this.customer.key,
      body: {
        type: 'invoke',
        payload: { substrate_id: this.substrateId, parameters: { x: this.counter++, y: 7 } },
        webhook_url: this.receiverUrl,
      },
    });
    const jobId = answer.body?.id as string | undefined;
    if (!jobId) return { ms: null, status: answer.status };
    const already = this.arrived.get(jobId);
    if (already !== undefined) return { ms: already - submitted, status: answer.status };
    const at = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), waitMs);
      this.arrivals.set(jobId, (arrivedAt) => {
        clearTimeout(timer);
        resolve(arrivedAt);
      });
    });
    this.arrivals.delete(jobId);
    return { ms: at === null ? null : at - submitted, status: answer.status };
  }

  /** The final state of each job the victim's calls left running (202), polled until final or `timeoutMs`. */
  async finalStates(calls: VictimCall[], timeoutMs: number): Promise<Map<string, { state: string; error: string | null }>> {
    const states = new Map<string, { state: string; error: string | null }>();
    const pending = calls.filter((c) => c.jobId && c.status === 202).map((c) => c.jobId as string);
    const deadline = Date.now() + timeoutMs;
    while (pending.length > 0 && Date.now() < deadline) {
      for (const id of [...pending]) {
        const answer = await call(this.api, 'GET', `/jobs/${id}`, { token: this.customer.key });
        const state = answer.body?.state as string | undefined;
        if (state && ['completed', 'failed', 'cancelled'].includes(state)) {
          states.set(id, { state, error: (answer.body?.error as string | null) ?? null });
          pending.splice(pending.indexOf(id), 1);
        }
      }
      if (pending.length > 0) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    for (const id of pending) states.set(id, { state: 'unfinished', error: null });
    return states;
  }

  async close(): Promise<void> {
    await this.probe?.terminate();
    this.probe = null;
    this.receiver?.closeAllConnections();
    await new Promise((resolve) => this.receiver?.close(resolve));
  }
}
