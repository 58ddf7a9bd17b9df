/**
 * The victim's measuring client, run in a worker thread of its own (victim.ts starts it): its `Prefer: wait`
 * invokes and `/health` probes are timed on an event loop that runs nothing else. On the test's own loop,
 * the attacker's load generator (3,000 concurrent requests and their answers' parsing, 10 MB bodies built
 * and sent) delayed the victim's timers and answer callbacks, and that delay was counted as the API's.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { call, type Answer } from './http.js';

/** What the victim's thread is given when it starts. */
export interface ProbeSetup {
  /** Marks the thread as the probe (this module is also imported on other threads, vitest's among them). */
  role: 'victim-probe';
  api: string;
  key: string;
  substrateId: string;
  /** The first `x` of its invokes (parameters never used before: no answer comes from the cache). */
  firstX: number;
  gapMs: number;
  healthEveryMs: number;
}

/** One of the victim's `Prefer: wait` invokes. */
export interface VictimCall {
  ms: number;
  status: number;
  /** The job's state in the answer (200: final; 202: still running after the wait). */
  state: string | null;
  jobId: string | null;
  error: string | null;
}

/** Messages to the thread: start measuring, stop and answer what was measured. */
export type ProbeCommand = { type: 'measure' } | { type: 'stop' };
/** Messages from the thread. */
export type ProbeReport = { type: 'ready' } | { type: 'sample'; calls: VictimCall[]; health: Array<{ ms: number; status: number }> };

export function victimCall(answer: Answer): VictimCall {
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

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Invokes one after another and `/health` beside them until `stopped()`; resolves with both. */
async function measure(setup: ProbeSetup, next: () => number, stopped: () => boolean) {
  const calls: VictimCall[] = [];
  const health: Array<{ ms: number; status: number }> = [];
  const invokes = (async () => {
    while (!stopped()) {
      const answer = await call(setup.api, 'POST', `/substrates/${setup.substrateId}/invoke`, {
        token: setup.key,
        body: { parameters: { x: next(), y: 7 } },
        headers: { prefer: 'wait=30' },
        timeoutMs: 60_000,
      });
      calls.push(victimCall(answer));
      await pause(setup.gapMs);
    }
  })();
  const probes = (async () => {
    while (!stopped()) {
      const answer = await call(setup.api, 'GET', '/health', { timeoutMs: 30_000 });
      health.push({ ms: answer.ms, status: answer.status });
      await pause(setup.healthEveryMs);
    }
  })();
  await Promise.all([invokes, probes]);
  return { calls, health };
}

if (parentPort && (workerData as Partial<ProbeSetup> | null)?.role === 'victim-probe') {
  const port = parentPort;
  const setup = workerData as ProbeSetup;
  let x = setup.firstX;
  let stop = false;
  port.on('message', (command: ProbeCommand) => {
    if (command.type === 'stop') {
      stop = true;
      return;
    }
    stop = false;
    void measure(
      setup,
      () => x++,
      () => stop,
    ).then((sample) => port.postMessage({ type: 'sample', ...sample } satisfies ProbeReport));
  });
  port.postMessage({ type: 'ready' } satisfies ProbeReport);
}
