/**
 * The platform side of http-submit, shared by the single-node scenario and cluster-http-submit: autocannon at
 * 64 connections POSTs uncached invokes to one API process while the invoke queues are paused (the API takes
 * the load alone, as the bare baseline server does), then the queues are resumed and every accepted job must
 * complete.
 */
import autocannon from 'autocannon';
import type { JobQueue } from '../../queue/queues.js';
import { cpuBreakdown, round, waitUntil } from './harness.js';

export interface HttpSubmitLoad {
  /** `POST …/substrates/:id/invoke` of the API under test. */
  url: string;
  /** The API key (Bearer) of the bench's customer. */
  key: string;
  /** Seconds of measured load. */
  duration: number;
  /** Seconds of the same load first, unmeasured, so the JIT has settled. */
  warmUpSeconds: number;
  /** Every invoke shard of the Redis the API under test writes to: paused during the load. */
  invokeQueues: JobQueue[];
  /** Full collections in the API and worker processes before the load. */
  settle(): Promise<unknown>;
  /** CPU seconds per process group, read before and after the measured load. */
  cpuGroups: Record<string, () => number>;
  /** Jobs of the bench's customer created since `since` that are final. */
  countFinished(since: Date): Promise<number>;
  /** Jobs of the bench's customer created since `since`: how many, and how many completed. */
  countRows(since: Date): Promise<{ total: number; completed: number }>;
  /** Called as the measured load starts, as the drain starts and once every accepted job is final (for Redis readings). */
  mark?(phase: 'load' | 'drain' | 'done'): Promise<void>;
}

export interface HttpSubmitMeasurement {
  /** 2xx answers autocannon received within the measured window. */
  accepted: number;
  acceptedPerSecond: number;
  /** Rows created in the window: also the requests still in flight when autocannon's clock stopped. */
  acceptedRows: number;
  completed: number;
  non2xx: number;
  errors: number;
  drainSeconds: number;
  p99Ms: number;
  cpu: Record<string, number>;
  /** Answers by HTTP status during the measured load. */
  statuses: Record<string, number>;
  /** When some answers were not 2xx: one more request's status and body, to say why. */
  problem: { status: number; body: string } | null;
}

/** The uncached invoke http-submit POSTs (autocannon options less the load's shape). */
export function submitRequest(url: string, key: string) {
  return {
    url,
    method: 'POST' as const,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ parameters: { x: 5, y: 7 } }),
  };
}

export async function measureHttpSubmit(load: HttpSubmitLoad): Promise<HttpSubmitMeasurement> {
  const options = { ...submitRequest(load.url, load.key), connections: 64 };
  await load.settle();
  await autocannon({ ...options, duration: load.warmUpSeconds });
  await waitUntil(
    async () => (await Promise.all(load.invokeQueues.map((queue) => queue.getWaitingCount()))).every((count) => count === 0),
    120_000,
    200,
  );
  const since = new Date();
  await Promise.all(load.invokeQueues.map((queue) => queue.pause()));
  await load.mark?.('load');
  const { result: run, cpu } = await cpuBreakdown(load.cpuGroups, () => autocannon({ ...options, duration: load.duration }));
  const accepted = run['2xx'];
  await load.mark?.('drain');
  await Promise.all(load.invokeQueues.map((queue) => queue.resume()));
  const drainStarted = performance.now();
  await waitUntil(async () => (await load.countFinished(since)) >= accepted, 600_000, 200);
  const drainSeconds = (performance.now() - drainStarted) / 1000;
  // autocannon counts only answers it received before its clock stopped; the server also accepted the
  // requests still in flight then. Every row accepted in the window must be completed.
  await waitUntil(
    async () => {
      const rows = await load.countRows(since);
      return rows.completed === rows.total;
    },
    30_000,
    200,
  ).catch(() => undefined);
  await load.mark?.('done');
  const rows = await load.countRows(since);
  let problem: HttpSubmitMeasurement['problem'] = null;
  if (run.non2xx > 0) {
    const answer = await fetch(options.url, { method: 'POST', headers: options.headers, body: options.body });
    problem = { status: answer.status, body: (await answer.text()).slice(0, 300) };
  }
  return {
    accepted,
    acceptedPerSecond: accepted / load.duration,
    acceptedRows: rows.total,
    completed: rows.completed,
    non2xx: run.non2xx,
    errors: run.errors,
    drainSeconds: round(drainSeconds, 2),
    p99Ms: run.latency.p99,
    cpu,
    statuses: Object.fromEntries(Object.entries(run.statusCodeStats ?? {}).map(([status, stats]) => [status, stats.count ?? 0])),
    problem,
  };
}
