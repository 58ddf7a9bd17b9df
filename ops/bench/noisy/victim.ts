import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { call, type Answer } from './http.js';
import { createSubstrate, type Customer } from './customers.js';

/** One of the victim's `Prefer: wait` invokes. */
export interface VictimCall {
  ms: number;
  status: number;
  /** The job's state in the answer (200: final; 202: still running after the wait). */
  state: string | null;
  jobId: string | null;
  error: string | null;
}

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

/**
 * The victim: a customer doing trivial work (`x * y`) with distinct parameters every call — a cached
 * invocation never reaches a worker and would prove nothing — one `Prefer: wait=30` invoke at a time,
 * while `/health` and Redis are probed beside it. Its webhook receiver is a loopback server.
 */
export class Victim {
  private counter = Math.floor(Math.random() * 1e9);
  private receiver: http.Server | null = null;
  private receiverUrl = '';
  private readonly arrivals = new Map<string, (at: number) => void>();
  private readonly arrived = new Map<string, number>();

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
    return victim;
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
    let done = false;
    void until.finally(() => (done = true));
    const sample: VictimSample = { calls: [], health: [], redisUsedBytes: [], redisWriteErrors: [] };
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const invokes = (async () => {
      while (!done) {
        sample.calls.push(await this.invoke());
        await pause(victimGapMs);
      }
    })();
    const health = (async () => {
      while (!done) {
        const answer = await call(this.api, 'GET', '/health', { timeoutMs: 30_000 });
        sample.health.push({ ms: answer.ms, status: answer.status });
        await pause(healthEveryMs);
      }
    })();
    const redis = (async () => {
      while (!done) {
        try {
          sample.redisUsedBytes.push(Number(/used_memory:(\d+)/.exec(await this.redis.info('memory'))?.[1] ?? 0));
          await this.redis.set(this.probeKey, String(Date.now()), 'EX', 60);
        } catch (error) {
          sample.redisWriteErrors.push(String(error).slice(0, 200));
        }
        await pause(redisEveryMs);
      }
    })();
    await Promise.all([until.catch(() => undefined), invokes, health, redis]);
    return sample;
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
    this.receiver?.closeAllConnections();
    await new Promise((resolve) => this.receiver?.close(resolve));
  }
}

function victimCall(answer: Answer): VictimCall {
  const error =
    answer.networkError ?? (answer.status >= 400 ? String(answer.body?.detail ?? answer.body?.title ?? '') : (answer.body?.error ?? null));
  return {
    ms: answer.ms,
    status: answer.status,
    state: (answer.body?.state as string | undefined) ?? null,
    jobId: (answer.body?.id as string | undefined) ?? null,
    error: error === null ? null : String(error).slice(0, 200),
  };
}
