/**
 * The last few minutes of HTTP requests of this API process, kept for `GET /stats` (Prometheus has the
 * fleet-wide history). A fixed ring of samples: memory stays bounded however busy the process is.
 */
export class RecentRequests {
  private readonly at: Float64Array;
  private readonly durationMs: Float64Array;
  private readonly status: Uint16Array;
  private readonly customer: Array<string | null>;
  private next = 0;
  private size = 0;

  /** @param capacity Samples kept; older ones are overwritten. Default 20,000. */
  constructor(private readonly capacity = 20_000) {
    this.at = new Float64Array(capacity);
    this.durationMs = new Float64Array(capacity);
    this.status = new Uint16Array(capacity);
    this.customer = new Array<string | null>(capacity).fill(null);
  }

  record(durationMs: number, status: number, customerId: string | null, now = Date.now()): void {
    const i = this.next;
    this.at[i] = now;
    this.durationMs[i] = durationMs;
    this.status[i] = status;
    this.customer[i] = customerId;
    this.next = (i + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /**
   * Figures over the last `windowMs` (default 5 min): requests, rate per second, share answered 5xx,
   * latency percentiles in ms. `customerId` narrows them to that customer's authenticated requests.
   */
  summary(options: { windowMs?: number; customerId?: string; now?: number } = {}) {
    const windowMs = options.windowMs ?? 5 * 60_000;
    const since = (options.now ?? Date.now()) - windowMs;
    const durations: number[] = [];
    let errors = 0;
    for (let k = 0; k < this.size; k++) {
      if (this.at[k]! < since) continue;
      if (options.customerId !== undefined && this.customer[k] !== options.customerId) continue;
      durations.push(this.durationMs[k]!);
      if (this.status[k]! >= 500) errors++;
    }
    durations.sort((a, b) => a - b);
    // The ring may not reach back a whole window on a busy process; rates use the span it does cover.
    const oldest = this.oldestSince(since);
    const spanMs = oldest === null ? windowMs : Math.max(1000, Math.min(windowMs, (options.now ?? Date.now()) - oldest));
    return {
      window_seconds: windowMs / 1000,
      requests: durations.length,
      requests_per_second: round(durations.length / (spanMs / 1000)),
      error_rate: durations.length === 0 ? 0 : round(errors / durations.length),
      latency_ms: { p50: percentile(durations, 0.5), p95: percentile(durations, 0.95), p99: percentile(durations, 0.99) },
    };
  }

  private oldestSince(since: number): number | null {
    if (this.size < this.capacity) return null;
    const oldest = this.at[this.next]!;
    return oldest >= since ? oldest : null;
  }
}

/** Nearest-rank percentile of sorted values; null when there are none. */
function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return round(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!);
}

const round = (value: number): number => Math.round(value * 1000) / 1000;

/** This process's recent requests, filled by the HTTP metrics middleware. */
export const recentRequests = new RecentRequests();
