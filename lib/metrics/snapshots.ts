/**
 * Worker processes' series on the API's `GET /metrics`. A worker has no HTTP API of its own (only its metrics
 * port), so SPEC's one `/metrics` would lack every job, pool, webhook and billing series when the API and the
 * workers run as separate processes (`npm start`, any deployment). Each worker therefore leaves a snapshot of its
 * registry in one Redis hash every few seconds, and the API renders its own series with every fresh snapshot's,
 * each of those labelled `process="<host>:<pid>"`, so no two processes' series are ever summed or confused.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { RedisClient } from '../redis.js';
import { metricsRegistry } from './catalog.js';

type MetricJson = MetricObjectWithValues<MetricValue<string>>;

interface Snapshot {
  /** When it was taken, ms since the epoch. */
  at: number;
  metrics: MetricJson[];
}

/** This process, as its snapshots name it: host, pid and a few random bytes (pids repeat across containers). */
export const metricsProcessId = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;

/** One hash for every process's snapshot (one hash slot on a Redis Cluster), a field per process. */
export const metricsSnapshotsKey = (prefix: string) => `${prefix}:{metrics}:snapshots`;

/**
 * Leaves this process's series in Redis now and every `everyMs`; returns the stop, which removes them. A failed
 * write is logged and tried again at the next turn: metrics never stop a worker.
 */
export function publishMetricSnapshots(redis: RedisClient, prefix: string, everyMs: number, logger: Logger): () => Promise<void> {
  const key = metricsSnapshotsKey(prefix);
  const publish = async () => {
    const snapshot: Snapshot = { at: Date.now(), metrics: (await metricsRegistry.getMetricsAsJSON()) as MetricJson[] };
    await redis.hset(key, metricsProcessId, JSON.stringify(snapshot));
  };
  const publishLogged = () => publish().catch((error: unknown) => logger.warn({ err: error }, 'could not publish metrics to Redis'));
  let publishing = publishLogged();
  const timer = setInterval(() => void (publishing = publishing.then(publishLogged)), everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await publishing;
    await redis.hdel(key, metricsProcessId).catch(() => undefined);
  };
}

/** The series of `metric` with `process` added to every value's labels. */
function labelledWithProcess(metric: MetricJson, processId: string): MetricJson {
  return { ...metric, values: metric.values.map((value) => ({ ...value, labels: { ...value.labels, process: processId } })) };
}

/** Every family of `sources`, once each, with all their values (HELP and TYPE from the first that has it). */
function mergedRegistry(sources: MetricJson[][]): Registry {
  const byName = new Map<string, MetricJson>();
  for (const metrics of sources) {
    for (const metric of metrics) {
      const known = byName.get(metric.name);
      byName.set(metric.name, known ? { ...known, values: [...known.values, ...metric.values] } : metric);
    }
  }
  const registry = new Registry();
  // As prom-client's own AggregatorRegistry registers merged series: an object whose `get` answers them.
  for (const metric of byName.values()) registry.registerMetric({ ...metric, get: () => metric } as never);
  return registry;
}

/** A snapshot as `publishMetricSnapshots` wrote it, or null for anything else (dropped like a stale one, never a 500). */
function readSnapshot(text: string): Snapshot | null {
  try {
    const snapshot = JSON.parse(text) as Partial<Snapshot> | null;
    return typeof snapshot?.at === 'number' && Array.isArray(snapshot.metrics) ? (snapshot as Snapshot) : null;
  } catch {
    return null;
  }
}

/** Fresh snapshots of other processes, labelled with their process; stale ones (a process gone) are removed. */
async function otherProcessesSeries(redis: RedisClient, prefix: string, maxAgeMs: number): Promise<MetricJson[][]> {
  const key = metricsSnapshotsKey(prefix);
  const fields = await redis.hgetall(key).catch(() => ({}) as Record<string, string>);
  const fresh: MetricJson[][] = [];
  const stale: string[] = [];
  for (const [processId, text] of Object.entries(fields)) {
    if (processId === metricsProcessId) continue;
    const snapshot = readSnapshot(text);
    if (!snapshot || Date.now() - snapshot.at > maxAgeMs) stale.push(processId);
    else fresh.push(snapshot.metrics.map((metric) => labelledWithProcess(metric, processId)));
  }
  if (stale.length > 0) void redis.hdel(key, ...stale).catch(() => undefined);
  return fresh;
}

/**
 * The Prometheus text of this process's series and, when `shared` is given, every other process's fresh snapshot
 * (`publishMetricSnapshots`). This process's own series carry no `process` label, as when it renders alone.
 */
export async function renderMetricsWithSnapshots(shared?: {
  redis: RedisClient;
  prefix: string;
  maxAgeMs: number;
}): Promise<{ contentType: string; body: string }> {
  const others = shared ? await otherProcessesSeries(shared.redis, shared.prefix, shared.maxAgeMs) : [];
  if (others.length === 0) return { contentType: metricsRegistry.contentType, body: await metricsRegistry.metrics() };
  const own = (await metricsRegistry.getMetricsAsJSON()) as MetricJson[];
  return { contentType: metricsRegistry.contentType, body: await mergedRegistry([own, ...others]).metrics() };
}
