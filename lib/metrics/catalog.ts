/**
 * Every Prometheus series a Chrysalis process exports, in one registry. It is the contract of the
 * Prometheus scrape config and the Grafana dashboard in `ops/`: the dashboard test checks that every name
 * it queries is defined here. It imports nothing but prom-client, so `api/`, `workers/` and job processors
 * can all increment a counter without pulling in a connection.
 *
 * Labels are bounded: route templates (never raw paths), job type names from the registry, queue names,
 * fixed outcome and state words, tier and service-type names from configuration. Never ids — with one
 * bounded exception: `chrysalis_customer_jobs` names the 10 customers holding the most unfinished jobs
 * (and sums the rest as `other`), so at most 11 customers per scrape.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The registry `/metrics` renders (API) and the worker's metrics port renders (workers). */
export const metricsRegistry = new Registry();

// process_cpu_seconds_total, process_resident_memory_bytes, nodejs_eventloop_lag_seconds, nodejs_heap_*…
collectDefaultMetrics({ register: metricsRegistry });

const registers = [metricsRegistry];

/** Seconds; from a fast cached read (~1 ms) to a `Prefer: wait=30` submit. */
const httpBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds; from a cached invoke (~1 ms) to a 10,000-item batch or a long billing run. */
const jobBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

// ── HTTP (API processes) ────────────────────────────────────────────────────────────────────────────

/** `route` is the Express route template with its mount (`/api/v1/jobs/:id`), or `unmatched`. */
export const httpRequests = new Counter({
  name: 'chrysalis_http_requests_total',
  help: 'HTTP requests answered, by method, route template and status code.',
  labelNames: ['method', 'route', 'status'] as const,
  registers,
});

export const httpRequestDuration = new Histogram({
  name: 'chrysalis_http_request_duration_seconds',
  help: 'Time from the request arriving to the response being sent, by method, route template and status code.',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: httpBuckets,
  registers,
});

/** `limiter`: `customer` (per customer and service, by tier), `register` or `login` (per IP). */
export const rateLimitedRequests = new Counter({
  name: 'chrysalis_rate_limited_requests_total',
  help: 'Requests refused with 429, by limiter.',
  labelNames: ['limiter'] as const,
  registers,
});

/**
 * `answered_by`: `notice` (a finished-job notice ended the wait), `poll` (the once-a-second re-read of
 * the row found it final: a notice was lost or the listener is reconnecting) or `timeout` (the wait ran
 * out and the request answered 202). A rising `poll` share means the notice listener is not hearing.
 */
export const jobWaits = new Counter({
  name: 'chrysalis_job_waits_total',
  help: 'Prefer: wait requests by what answered them (notice, poll, timeout).',
  labelNames: ['answered_by'] as const,
  registers,
});

// ── Jobs (worker processes) ─────────────────────────────────────────────────────────────────────────

/** Outcome of one attempt as the processor saw it. */
export type JobAttemptOutcome = 'completed' | 'failed' | 'retried';

/** `outcome`: `completed`; `failed` (final, no more attempts); `retried` (the attempt failed, BullMQ retries). */
export const jobAttempts = new Counter({
  name: 'chrysalis_jobs_total',
  help: 'Job attempts finished by this worker process, by job type and outcome (completed, failed, retried).',
  labelNames: ['type', 'outcome'] as const,
  registers,
});

export const jobDuration = new Histogram({
  name: 'chrysalis_job_duration_seconds',
  help: 'Processor run time of one attempt (including the result write), by job type and outcome.',
  labelNames: ['type', 'outcome'] as const,
  buckets: jobBuckets,
  registers,
});

// ── Queues (API processes read them; every process sees the same Redis) ────────────────────────────

/** BullMQ states counted per queue. */
export const queueStates = ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed', 'waiting-children'] as const;
export type QueueState = (typeof queueStates)[number];

export interface QueueDepth {
  queue: string;
  counts: Partial<Record<QueueState, number>>;
}

const queueDepthSources = new Set<() => Promise<QueueDepth[]>>();

/**
 * Adds a reader of queue depths, called at scrape time (cache it: see api/metrics.ts). Returns its removal.
 * A reader that fails leaves its queues out of that scrape rather than failing `/metrics`.
 */
export function addQueueDepthSource(read: () => Promise<QueueDepth[]>): () => void {
  queueDepthSources.add(read);
  return () => queueDepthSources.delete(read);
}

export const queueJobs = new Gauge({
  name: 'chrysalis_queue_jobs',
  help: 'Jobs in each BullMQ queue by state, read from Redis at most every few seconds; a bundle (many jobs of one bulk submit) counts as one. Completed and failed count only the jobs Redis still retains.',
  labelNames: ['queue', 'state'] as const,
  registers,
  async collect() {
    const depths = await Promise.all([...queueDepthSources].map((read) => read().catch(() => [])));
    this.reset();
    for (const { queue, counts } of depths.flat()) {
      for (const state of queueStates) this.set({ queue, state }, counts[state] ?? 0);
    }
  },
});

// ── Accepted jobs on their way to Redis (API processes) ──────────────────────────────────────────

const pendingEnqueueSources = new Set<{ readonly size: number }>();

/** Reports an API process's pending adds (queue/pending-enqueues.ts) until the returned function removes them. */
export function addPendingEnqueuesSource(source: { readonly size: number }): () => void {
  pendingEnqueueSources.add(source);
  return () => pendingEnqueueSources.delete(source);
}

export const pendingEnqueues = new Gauge({
  name: 'chrysalis_pending_enqueues',
  help: 'Accepted jobs answered 202 whose BullMQ add has not settled yet (their rows are on disk). Growing: Redis is slow or down; past 1,000 a submit waits for its own add.',
  registers,
  collect() {
    let size = 0;
    for (const source of pendingEnqueueSources) size += source.size;
    this.set(size);
  },
});

// ── Per-customer backlog (API processes; read from PostgreSQL) ─────────────────────────────────────

/** How many customers `chrysalis_customer_jobs` names; everybody else is `customer="other"`. */
export const topBacklogCustomers = 10;

/** One label value of `chrysalis_customer_jobs`: a customer id, or `other`. */
export interface CustomerJobCounts {
  customer: string;
  /** Queued and delayed: accepted, not started. */
  queued: number;
  active: number;
}

const customerJobSources = new Set<() => Promise<CustomerJobCounts[]>>();

/** Adds the reader of per-customer counts, called at scrape time (cache it: see api/metrics.ts). Returns its removal. */
export function addCustomerJobsSource(read: () => Promise<CustomerJobCounts[]>): () => void {
  customerJobSources.add(read);
  return () => customerJobSources.delete(read);
}

export const customerJobs = new Gauge({
  name: 'chrysalis_customer_jobs',
  help: `Unfinished jobs of the ${topBacklogCustomers} customers holding the most (customer = its id), everybody else summed as customer="other"; state queued (queued or delayed) or active. Read from PostgreSQL at most every few seconds; every API process reports the same figures (aggregate with max, not sum).`,
  labelNames: ['customer', 'state'] as const,
  registers,
  async collect() {
    const read = await Promise.all([...customerJobSources].map((source) => source().catch(() => null)));
    const counts = read.find((value) => value !== null);
    if (!counts) return; // no reader, or PostgreSQL did not answer: keep the last figures rather than report zero
    this.reset();
    for (const { customer, queued, active } of counts) {
      this.set({ customer, state: 'queued' }, queued);
      this.set({ customer, state: 'active' }, active);
    }
  },
});

// ── Piscina pools (worker processes) ────────────────────────────────────────────────────────────────

/** What the pool gauges read from a Piscina pool (structural, so this module does not import piscina). */
export interface PoolLike {
  readonly utilization: number;
  readonly queueSize: number;
  readonly threads: readonly unknown[];
  readonly completed: number;
}

const pools = new Map<string, PoolLike>();

/** Reports a pool under `name` (e.g. `evaluation`) until the returned function removes it. */
export function addPoolSource(name: string, pool: PoolLike): () => void {
  pools.set(name, pool);
  return () => {
    if (pools.get(name) === pool) pools.delete(name);
  };
}

/** A collect that sets one gauge from every reported pool (reset first, so a removed pool disappears). */
function fromPools(read: (pool: PoolLike) => number) {
  return function collect(this: Gauge<'pool'>): void {
    this.reset();
    for (const [pool, source] of pools) this.set({ pool }, read(source));
  };
}

export const poolUtilization = new Gauge({
  name: 'chrysalis_pool_utilization_ratio',
  help: "Piscina pool utilisation (0–1): Piscina's ratio of task run time to the pool's run-time capacity.",
  labelNames: ['pool'] as const,
  registers,
  collect: fromPools((pool) => pool.utilization),
});

export const poolQueueSize = new Gauge({
  name: 'chrysalis_pool_queue_size',
  help: 'Tasks waiting for a free Piscina thread.',
  labelNames: ['pool'] as const,
  registers,
  collect: fromPools((pool) => pool.queueSize),
});

export const poolThreads = new Gauge({
  name: 'chrysalis_pool_threads',
  help: 'Piscina worker threads alive.',
  labelNames: ['pool'] as const,
  registers,
  collect: fromPools((pool) => pool.threads.length),
});

export const poolTasksCompleted = new Gauge({
  name: 'chrysalis_pool_tasks_completed',
  help: 'Tasks the Piscina pool has completed since it started (monotonic while the process lives; use rate()).',
  labelNames: ['pool'] as const,
  registers,
  collect: fromPools((pool) => pool.completed),
});

// ── Cache ───────────────────────────────────────────────────────────────────────────────────────────

/** `cache`: `invocation` (substrate invocation results); `result`: `hit` or `miss`. */
export const cacheLookups = new Counter({
  name: 'chrysalis_cache_lookups_total',
  help: 'Cache lookups by cache and result (hit, miss).',
  labelNames: ['cache', 'result'] as const,
  registers,
});

/** Counts one lookup of the named cache. */
export function recordCacheLookup(cache: 'invocation', hit: boolean): void {
  cacheLookups.inc({ cache, result: hit ? 'hit' : 'miss' });
}

// ── Webhooks (worker processes; incremented by the webhook dispatcher) ─────────────────────────────

/**
 * The state the delivery attempt is recorded with: `succeeded` (2xx); `retrying` (it failed — non-2xx,
 * timeout, refused address, network error — and will be retried); `failed` (the last attempt failed).
 */
export type WebhookDeliveryOutcome = 'succeeded' | 'retrying' | 'failed';

export const webhookDeliveries = new Counter({
  name: 'chrysalis_webhook_deliveries_total',
  help: 'Webhook delivery attempts by outcome (succeeded, retrying, failed).',
  labelNames: ['outcome'] as const,
  registers,
});

export const webhookDeliveryDuration = new Histogram({
  name: 'chrysalis_webhook_delivery_duration_seconds',
  help: 'Time one webhook delivery attempt took, by outcome.',
  labelNames: ['outcome'] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers,
});

/** Records one delivery attempt: call it once per attempt, with its duration in seconds. */
export function recordWebhookDelivery(outcome: WebhookDeliveryOutcome, seconds: number): void {
  webhookDeliveries.inc({ outcome });
  webhookDeliveryDuration.observe({ outcome }, seconds);
}

// ── Billing (worker processes; incremented by the billing job) ─────────────────────────────────────

/**
 * Cents charged to customers. Increment once per committed charge. A charge covers a customer's every service and
 * tier at once, so its labels are `service_type="all", tier="all"` (kept for dashboards that select them).
 */
export const billingChargedCents = new Counter({
  name: 'chrysalis_billing_charged_usd_cents_total',
  help: 'US cents charged on the escrow ledger (after the billing transaction commits); one charge covers all of a customer\'s services and tiers, labelled "all".',
  labelNames: ['service_type', 'tier'] as const,
  registers,
});

/**
 * `charged`; `insufficient_balance` or `monthly_limit_exceeded` (refused, services suspended);
 * `failed` (the escrow adapter failed; retried by the next run).
 */
export type BillingChargeOutcome = 'charged' | 'insufficient_balance' | 'monthly_limit_exceeded' | 'failed';

export const billingCharges = new Counter({
  name: 'chrysalis_billing_charges_total',
  help: 'Per-customer billing attempts by outcome (charged, insufficient_balance, monthly_limit_exceeded, failed).',
  labelNames: ['outcome'] as const,
  registers,
});

/** Every series name the code defines (default process metrics aside), for the dashboard test. */
export function chrysalisMetricNames(): string[] {
  return metricsRegistry
    .getMetricsAsArray()
    .map((metric) => metric.name)
    .filter((name) => name.startsWith('chrysalis_'));
}
