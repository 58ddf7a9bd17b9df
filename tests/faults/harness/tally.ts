import type { FaultStack, JobRow } from './fault-stack.js';

/** What a scenario proves, as counts. */
export interface Tally {
  /** Jobs answered 202 (or 200): the platform promised to run them. */
  accepted: number;
  completed: number;
  failed: number;
  /**
   * Duplicated effects: results written to a job row more than once (see audit.ts), plus batch items
   * stored more than once or missing from a completed batch.
   */
  duplicates: number;
  /** Accepted jobs with no row or not final at the end, and completed batches missing items. */
  lost: number;
  /** Completed jobs whose stored result is not the expected one. */
  wrongResults: number;
}

/**
 * Counts the outcome of a scenario's accepted jobs from PostgreSQL (the record). `expected(row)` returns
 * the result value the job must have stored (`result.result` of an invoke), or undefined to skip.
 */
export async function tally(stack: FaultStack, acceptedIds: string[], expected?: (row: JobRow) => unknown): Promise<Tally> {
  const ids = [...new Set(acceptedIds)];
  const rows = await stack.jobRows(ids);
  const writes = await stack.sql<{ job_id: string; writes: number }>(
    `select job_id, count(*)::int as writes from fault_audit where job_id = any($1::uuid[]) group by job_id`,
    [ids],
  );
  const batchItems = await stack.sql<{ batch_id: string; items: number; distinct_items: number; total: number }>(
    `select j.id as batch_id, count(b.index)::int as items, count(distinct b.index)::int as distinct_items,
            jsonb_array_length(j.payload -> 'invocations') as total
       from jobs j left join batch_items b on b.batch_id = j.id
      where j.id = any($1::uuid[]) and j.type = 'batch' and j.state = 'completed'
      group by j.id`,
    [ids],
  );
  const final = rows.filter((row) => ['completed', 'failed', 'cancelled'].includes(row.state));
  const completed = rows.filter((row) => row.state === 'completed');
  const wrongResults = expected
    ? completed.filter((row) => {
        const want = expected(row);
        return want !== undefined && (row.result as { result?: unknown } | null)?.result !== want;
      }).length
    : 0;
  const duplicates =
    writes.reduce((sum, row) => sum + Math.max(0, row.writes - 1), 0) +
    batchItems.reduce((sum, batch) => sum + (batch.items - batch.distinct_items) + Math.max(0, batch.distinct_items - batch.total), 0);
  const incompleteBatches = batchItems.filter((batch) => batch.distinct_items < batch.total).length;
  return {
    accepted: ids.length,
    completed: completed.length,
    failed: rows.filter((row) => row.state === 'failed').length,
    duplicates,
    lost: ids.length - final.length + incompleteBatches,
    wrongResults,
  };
}

/** The scenario's one line on stdout: `accepted N, completed N, duplicates N, lost N` (and any extras). */
export function report(scenario: string, counts: Tally, extras: Record<string, string | number> = {}): void {
  const base = `accepted ${counts.accepted}, completed ${counts.completed}, duplicates ${counts.duplicates}, lost ${counts.lost}`;
  const more = Object.entries({ ...(counts.failed ? { failed: counts.failed } : {}), ...extras }).map(([key, value]) => `${key} ${value}`);
  console.log(`[faults] ${scenario}: ${[base, ...more].join(', ')}`);
}
