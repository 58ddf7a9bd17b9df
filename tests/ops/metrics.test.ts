import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheLookups, httpRequestDuration, httpRequests, jobAttempts, jobDuration } from '../../lib/metrics/catalog.js';
import { Counter, Histogram, Registry } from 'prom-client';
import { metricsProcessId, metricsSnapshotsKey, publishMetricSnapshots } from '../../lib/metrics/snapshots.js';
import { serveWorkerMetrics } from '../../workers/metrics.js';
import { jobCounts } from '../helpers/queues.js';
import { expectProblem } from '../auth/expect-problem.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let user: TestUser;
let substrateId: string;
let jobId: string;
/** The process's series before this file's traffic: counters are process-wide, and other files may have run in this process. */
let before: Sample[];

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition into samples (enough for our label values: no escaped quotes). */
function parseExposition(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`unparsable line: ${line}`);
      const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
      return { name: match[1]!, labels, value: Number(match[3]) };
    });
}

const find = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

/** How much one counter series grew since `before` (a series that was not there yet counts from 0). */
function grewBy(samples: Sample[], name: string, labels: Record<string, string>): number {
  const [series, ...others] = find(samples, name, labels);
  if (!series || others.length > 0)
    throw new Error(`${name} ${JSON.stringify(labels)}: ${others.length + (series ? 1 : 0)} series, not one`);
  return series.value - (find(before, name, series.labels)[0]?.value ?? 0);
}

/** The counters' series now, read from the registry (a scrape would also fill the queue-depth gauge's 5 s cache). */
async function countersNow(): Promise<Sample[]> {
  const counters = [httpRequests, httpRequestDuration, jobAttempts, jobDuration, cacheLookups];
  const series = await Promise.all(counters.map((counter) => counter.get()));
  return series.flatMap(({ name, values }) =>
    values.map((sample) => ({
      name: (sample as { metricName?: string }).metricName ?? name,
      labels: Object.fromEntries(Object.entries(sample.labels).map(([key, value]) => [key, String(value)])),
      value: sample.value,
    })),
  );
}

beforeAll(async () => {
  app = await startTestApp();
  await app.startWorkers();
  request = httpClient(app.baseUrl);
  before = await countersNow();
  user = await registerUser(request);
  const created = await request('POST', '/api/v1/substrates', {
    token: user.accessToken,
    body: { expression_type: 'expression', expression: 'x * 3' },
  });
  substrateId = created.body.substrate_id;
  // Real traffic: three invocations through the workers (cache misses), one repeated (the API answers it
  // from the cache without a job), and one operation that fails.
  for (const x of [1, 2, 3, 3]) {
    const response = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: user.accessToken,
      headers: { prefer: 'wait=10' },
      body: { parameters: { x } },
    });
    expect(response.status, response.text).toBe(200);
    jobId = response.body.id;
  }
  const failing = await request('POST', `/api/v1/substrates/${substrateId}/root`, {
    token: user.accessToken,
    headers: { prefer: 'wait=10' },
    body: { degree: 2, parameters: { x: -1 } },
  });
  expect(failing.body.state).toBe('failed');
  // Prefer: wait answers once PostgreSQL has the outcome; BullMQ records it (and the hooks count it) just after.
  await waitFor(async () => {
    const counts = await jobCounts(app.deps.queues, 'invoke', 'completed', 'failed');
    return counts.completed === 3 && counts.failed === 1;
  });
  expect((await request('GET', `/api/v1/jobs/${jobId}`, { token: user.accessToken })).status).toBe(200);
  expect((await request('GET', '/api/v1/jobs/01900000-0000-7000-8000-000000000000', { token: user.accessToken })).status).toBe(404);
  expect((await request('GET', '/api/v1/no-such-route')).status).toBeGreaterThanOrEqual(400);
});

afterAll(async () => {
  await app?.close();
});

describe('GET /metrics', () => {
  it('answers 401 without the metrics token, and with a wrong one', async () => {
    expectProblem(await request('GET', '/api/v1/metrics'), 401, 'unauthorized');
    expectProblem(await request('GET', '/api/v1/metrics', { token: 'not-the-metrics-token' }), 401, 'unauthorized');
    // A user's own access token is not the metrics token either.
    expectProblem(await request('GET', '/api/v1/metrics', { token: user.accessToken }), 401, 'unauthorized');
  });

  it('shows HTTP, job, queue, pool and cache series with bounded labels after real traffic', async () => {
    const response = await request('GET', '/api/v1/metrics', { token: app.config.metricsToken });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const samples = parseExposition(response.text);

    // HTTP: route templates with their mount, never raw paths.
    expect(
      grewBy(samples, 'chrysalis_http_requests_total', { method: 'POST', route: '/api/v1/substrates/:id/invoke', status: '200' }),
    ).toBe(4);
    expect(find(samples, 'chrysalis_http_requests_total', { method: 'GET', route: '/api/v1/jobs/:id', status: '200' })).toHaveLength(1);
    // A route that throws keeps its template (the router has restored req.baseUrl by the time the error is answered).
    expect(find(samples, 'chrysalis_http_requests_total', { method: 'GET', route: '/api/v1/jobs/:id', status: '404' })).toHaveLength(1);
    expect(find(samples, 'chrysalis_http_requests_total', { route: '/api/v1/auth/register', status: '201' })).toHaveLength(1);
    expect(find(samples, 'chrysalis_http_requests_total', { route: 'unmatched' }).length).toBeGreaterThan(0);
    expect(
      grewBy(samples, 'chrysalis_http_request_duration_seconds_bucket', {
        route: '/api/v1/substrates/:id/invoke',
        status: '200',
        le: '+Inf',
      }),
    ).toBe(4);

    // Jobs: by type and outcome, with a duration histogram.
    expect(grewBy(samples, 'chrysalis_jobs_total', { type: 'invoke', outcome: 'completed' })).toBe(3);
    expect(grewBy(samples, 'chrysalis_jobs_total', { type: 'invoke', outcome: 'failed' })).toBe(1);
    expect(grewBy(samples, 'chrysalis_job_duration_seconds_count', { type: 'invoke', outcome: 'completed' })).toBe(3);

    // Queue depth by queue and state (Redis keeps completed jobs for an hour).
    expect(find(samples, 'chrysalis_queue_jobs', { queue: 'invoke', state: 'completed' })[0]?.value).toBe(3);
    expect(find(samples, 'chrysalis_queue_jobs', { queue: 'invoke', state: 'failed' })[0]?.value).toBe(1);
    expect(find(samples, 'chrysalis_queue_jobs', { queue: 'invoke', state: 'waiting' })[0]?.value).toBe(0);
    expect(find(samples, 'chrysalis_queue_jobs', { queue: 'divide', state: 'active' })).toHaveLength(1);

    // The Piscina pool.
    expect(find(samples, 'chrysalis_pool_threads', { pool: 'evaluation' })[0]?.value).toBe(2);
    const utilization = find(samples, 'chrysalis_pool_utilization_ratio', { pool: 'evaluation' })[0]?.value;
    expect(utilization).toBeGreaterThanOrEqual(0);
    expect(utilization).toBeLessThanOrEqual(1);
    expect(find(samples, 'chrysalis_pool_queue_size', { pool: 'evaluation' })[0]?.value).toBe(0);

    // The invocation cache: three misses (workers), one hit (the API's fast path).
    expect(grewBy(samples, 'chrysalis_cache_lookups_total', { cache: 'invocation', result: 'hit' })).toBe(1);
    expect(grewBy(samples, 'chrysalis_cache_lookups_total', { cache: 'invocation', result: 'miss' })).toBe(3);

    // Default process metrics.
    expect(find(samples, 'process_cpu_seconds_total')).toHaveLength(1);
    expect(find(samples, 'nodejs_eventloop_lag_seconds')).toHaveLength(1);

    // No label value anywhere carries an id.
    const idLike = /[0-9a-f]{8}-[0-9a-f]{4}-|0x[0-9a-f]{16}|@example\.test/;
    for (const sample of samples) for (const value of Object.values(sample.labels)) expect(value).not.toMatch(idLike);
  });

  it("shows each worker process's series from its snapshot in Redis, labelled with its process; a stale one goes", async () => {
    const key = metricsSnapshotsKey(app.config.queuePrefix);
    const worker = new Registry();
    new Counter({ name: 'chrysalis_jobs_total', help: 'h', labelNames: ['type', 'outcome'], registers: [worker] }).inc(
      { type: 'invoke', outcome: 'completed' },
      7,
    );
    new Histogram({ name: 'chrysalis_job_duration_seconds', help: 'h', labelNames: ['type'], buckets: [1], registers: [worker] }).observe(
      { type: 'invoke' },
      0.5,
    );
    const snapshot = async (at: number) => JSON.stringify({ at, metrics: await worker.getMetricsAsJSON() });
    await app.deps.redis.hset(key, 'worker-host:41:aaaaaa', await snapshot(Date.now()));
    await app.deps.redis.hset(key, 'gone-host:42:bbbbbb', await snapshot(Date.now() - 3_600_000));
    await app.deps.redis.hset(key, 'garbled:43:cccccc', '{"at":');

    const scraped = await request('GET', '/api/v1/metrics', { token: app.config.metricsToken });
    const samples = parseExposition(scraped.text);
    expect(find(samples, 'chrysalis_jobs_total', { process: 'worker-host:41:aaaaaa' }).map((s) => s.value)).toEqual([7]);
    expect(find(samples, 'chrysalis_job_duration_seconds_count', { type: 'invoke', process: 'worker-host:41:aaaaaa' })[0]?.value).toBe(1);
    expect(samples.filter((s) => s.labels.process === 'gone-host:42:bbbbbb')).toEqual([]);
    // One family each, this process's own series with it and without a process label.
    expect(scraped.text.match(/^# TYPE chrysalis_jobs_total /gm)).toHaveLength(1);
    expect(find(samples, 'chrysalis_http_requests_total').some((s) => s.labels.process === undefined)).toBe(true);
    await waitFor(async () => (await app.deps.redis.hexists(key, 'gone-host:42:bbbbbb')) === 0);
    expect(await app.deps.redis.hexists(key, 'garbled:43:cccccc')).toBe(0);
    await app.deps.redis.hdel(key, 'worker-host:41:aaaaaa');
  });

  it("publishes this process's series for the API's /metrics until stopped", async () => {
    const key = metricsSnapshotsKey(app.config.queuePrefix);
    const stop = publishMetricSnapshots(app.deps.redis, app.config.queuePrefix, 60_000, pino({ level: 'silent' }));
    const published = await waitFor(async () => app.deps.redis.hget(key, metricsProcessId));
    const snapshot = JSON.parse(published) as { at: number; metrics: Array<{ name: string }> };
    expect(Date.now() - snapshot.at).toBeLessThan(60_000);
    expect(snapshot.metrics.map((metric) => metric.name)).toContain('chrysalis_jobs_total');
    await stop();
    expect(await app.deps.redis.hexists(key, metricsProcessId)).toBe(0);
  });

  it("serves a worker process's own series on its metrics port, behind the same token", async () => {
    const server = await serveWorkerMetrics({
      port: 0,
      host: '127.0.0.1',
      token: app.config.metricsToken,
      logger: pino({ level: 'silent' }),
    });
    try {
      const { port } = server.address() as { port: number };
      const url = `http://127.0.0.1:${port}/metrics`;
      expect((await fetch(url)).status).toBe(401);
      const scraped = await fetch(url, { headers: { authorization: `Bearer ${app.config.metricsToken}` } });
      expect(scraped.status).toBe(200);
      const completed = parseExposition(await scraped.text());
      expect(grewBy(completed, 'chrysalis_jobs_total', { type: 'invoke', outcome: 'completed' })).toBe(3);
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
