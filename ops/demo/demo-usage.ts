/** A request-log row as POST /admin/usage/ingest takes it (one NDJSON line). */
export interface UsageRow {
  timestamp: string;
  customer_id: string;
  service_type: string;
  method: string;
  status_code: number;
  bytes_out: number;
}

/** Rows per NDJSON request: well under the 16 MiB body limit. */
export const ingestChunkRows = 10_000;

/**
 * A week of edge-proxy traffic for one customer and service, ending an hour ago: busier in the working hours
 * of UTC, quieter at night and on the weekend, a few errors. Deterministic from `seed`, so reruns look alike.
 */
export function weekOfUsage(customerId: string, serviceType: string, scale: number, seed: number, now = Date.now()): UsageRow[] {
  let state = seed >>> 0 || 1;
  const random = () => {
    // xorshift32: reproducible noise, nothing secret.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const rows: UsageRow[] = [];
  const lastHour = Math.floor(now / 3_600_000) - 1;
  for (let hour = lastHour - 7 * 24 + 1; hour <= lastHour; hour++) {
    const at = new Date(hour * 3_600_000);
    const daytime = at.getUTCHours() >= 8 && at.getUTCHours() < 20 ? 1 : 0.3;
    const weekday = at.getUTCDay() === 0 || at.getUTCDay() === 6 ? 0.5 : 1;
    const count = Math.round(scale * daytime * weekday * (0.6 + random() * 0.8));
    for (let i = 0; i < count; i++) {
      rows.push({
        timestamp: new Date(hour * 3_600_000 + Math.floor(random() * 3_600_000)).toISOString(),
        customer_id: customerId,
        service_type: serviceType,
        method: random() < 0.7 ? 'GET' : 'POST',
        status_code: random() < 0.03 ? 500 : 200,
        bytes_out: 200 + Math.floor(random() * 4000),
      });
    }
  }
  return rows;
}
