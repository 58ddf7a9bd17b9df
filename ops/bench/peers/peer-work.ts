/**
 * What a peer's worker process does with each job, exactly as the raw baseline does
 * (ops/bench/baseline/raw-worker.ts): evaluate the CEL expression in a Piscina pool of PISCINA_THREADS
 * threads, then commit the result row in a multi-row INSERT (flushed every 5 ms or 200 rows) before
 * the job may complete. DATABASE_URL is the side's worker URL (synchronous_commit off, peer-database.ts).
 */
import pg from 'pg';
import { Piscina } from 'piscina';
import type { EvaluateInput, EvaluateOutput } from '../../../jobs/invoke/evaluate.task.js';

export interface ResultRow {
  id: string;
  value: unknown;
}

export interface PeerWork {
  evaluate(input: EvaluateInput): Promise<unknown>;
  /** Resolves once the row is committed, batched with other jobs' rows. */
  persist(row: ResultRow): Promise<void>;
  /** Commits rows the caller already holds together (a pg-boss batch) in one statement. */
  persistMany(rows: ResultRow[]): Promise<void>;
  /** Tells the bench this process takes work (PeerDatabase.waitForWorker). */
  signalReady(): Promise<void>;
  close(): Promise<void>;
}

export function createPeerWork(env: NodeJS.ProcessEnv = process.env): PeerWork {
  const threads = Number(env.PISCINA_THREADS ?? 2);
  const pool = new Piscina({
    filename: new URL('../../../jobs/invoke/evaluate.task.ts', import.meta.url).href,
    execArgv: ['--import', 'tsx'],
    minThreads: threads,
    maxThreads: threads,
  });
  const db = new pg.Pool({ connectionString: env.DATABASE_URL, max: 4 });

  const insert = async (rows: ResultRow[]) => {
    if (rows.length === 0) return;
    await db.query(
      `insert into bench_results (id, value) values ${rows.map((_, i) => `($${i * 2 + 1}, $${i * 2 + 2}::jsonb)`).join(', ')} on conflict do nothing`,
      rows.flatMap((row) => [row.id, JSON.stringify(row.value)]),
    );
  };

  let buffer: Array<ResultRow & { resolve: () => void; reject: (error: unknown) => void }> = [];
  let timer: NodeJS.Timeout | null = null;
  const flush = async () => {
    if (timer) clearTimeout(timer);
    timer = null;
    const rows = buffer;
    buffer = [];
    try {
      await insert(rows);
      for (const row of rows) row.resolve();
    } catch (error) {
      for (const row of rows) row.reject(error);
    }
  };

  return {
    evaluate: async (input) => ((await pool.run(input)) as EvaluateOutput).value,
    persist: (row) =>
      new Promise((resolve, reject) => {
        buffer.push({ ...row, resolve, reject });
        if (buffer.length >= 200) void flush();
        else timer ??= setTimeout(() => void flush(), 5);
      }),
    persistMany: insert,
    signalReady: async () => {
      await db.query('insert into bench_ready (pid) values ($1)', [process.pid]);
    },
    async close() {
      await flush();
      await pool.destroy();
      await db.end();
    },
  };
}
