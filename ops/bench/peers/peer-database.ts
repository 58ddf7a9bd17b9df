/**
 * One database per side of the peers scenario, on the bench's PostgreSQL server, holding the side's
 * queue (graphile-worker's or pg-boss's schema) and its `bench_results` table.
 */
import pg from 'pg';
import { waitUntil } from '../harness.js';

export interface PeerDatabase {
  name: string;
  /** For enqueuing and counting: commits wait for the WAL flush (the server's default). */
  url: string;
  /**
   * For the side's worker process: every commit with `synchronous_commit = off`, as Chrysalis's worker
   * commits its state and result writes, so no side buys speed with weaker durability than another.
   */
  workerUrl: string;
  resultCount(): Promise<number>;
  resultValues(): Promise<unknown[]>;
  /** Resolves once the worker process `pid` has said it takes work (see peer-work.ts). */
  waitForWorker(pid: number | undefined): Promise<void>;
  drop(): Promise<void>;
}

export async function createPeerDatabase(adminUrl: string, name: string): Promise<PeerDatabase> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` });
  const workerUrl = new URL(url);
  workerUrl.searchParams.set('options', '-c synchronous_commit=off');
  const db = new pg.Pool({ connectionString: url.toString(), max: 2 });
  db.on('error', () => undefined); // idle clients see the database dropped at the end
  await db.query('create table bench_results (id text primary key, value jsonb)');
  await db.query('create table bench_ready (pid int primary key)');
  return {
    name,
    url: url.toString(),
    workerUrl: workerUrl.toString(),
    resultCount: async () => Number((await db.query('select count(*) as n from bench_results')).rows[0].n),
    resultValues: async () => (await db.query('select value from bench_results')).rows.map((row) => row.value),
    waitForWorker: (pid) =>
      waitUntil(async () => (await db.query('select 1 from bench_ready where pid = $1', [pid])).rowCount === 1, 60_000, 50),
    async drop() {
      await db.end();
      const cleanup = new pg.Client({ connectionString: adminUrl });
      await cleanup.connect();
      await cleanup.query(`drop database if exists ${name} with (force)`).catch(() => undefined);
      await cleanup.end();
    },
  };
}
