import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../../lib/logger.js';
import { createOrm, type Orm } from '../../db/orm.js';
import { createRedis } from '../../lib/redis.js';
import { pauseType } from '../helpers/queues.js';
import { deleteKeys } from '../helpers/redis-cluster.js';
import { runWorkers, type RunningWorkers } from '../../workers/run-workers.js';
import { auditTriggerSql } from '../faults/harness/audit.js';
import type { TestUser } from '../helpers/accounts.js';
import { waitFor } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

const suite = useTestApp({ workers: true, users: 1 });
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'chrysalis-backup-test-'));
const backupFile = path.join(work, 'snapshot.tar.gz');
const databases: string[] = [];
let user: TestUser;
let substrateId: string;

const admin = () => new pg.Client({ connectionString: inject('adminDatabaseUrl') });

/** A new, empty database on the suite's server (no template: nothing in it). */
async function emptyDatabase(): Promise<string> {
  const name = `chrysalis_r_${randomBytes(5).toString('hex')}`;
  const client = admin();
  await client.connect();
  await client.query(`create database ${name} template template0`);
  await client.end();
  databases.push(name);
  const url = new URL(inject('adminDatabaseUrl'));
  url.pathname = `/${name}`;
  return url.toString();
}

async function sqlOn<Row>(databaseUrl: string, text: string, params: unknown[] = []): Promise<Row[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as Row[];
  } finally {
    await client.end();
  }
}

/** `npm run backup|restore -- FILE` as an operator runs it, against `databaseUrl`. */
async function npmRun(script: 'backup' | 'restore', file: string, databaseUrl: string, extra: string[] = []) {
  try {
    const { stdout, stderr } = await promisify(execFile)('npm', ['run', '--silent', script, '--', file, ...extra], {
      env: { ...process.env, DATABASE_URL: databaseUrl, DATA_DIR: '.data/test' },
      encoding: 'utf8',
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

beforeAll(async () => {
  user = suite.users[0] as TestUser;
  substrateId = await createExpressionSubstrate(suite.request, user.accessToken, 'x * y');
});

afterAll(async () => {
  fs.rmSync(work, { recursive: true, force: true });
  const client = admin();
  await client.connect();
  for (const name of databases) await client.query(`drop database if exists ${name} with (force)`);
  await client.end();
});

const invoke = (x: number, extra: Record<string, unknown> = {}) =>
  suite.request('POST', '/api/v1/jobs', {
    token: user.accessToken,
    body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x, y: 3 } }, ...extra },
  });

describe('backup and restore', () => {
  it('restores a mid-run snapshot into a fresh database and Redis prefix, where every accepted unfinished job and the schedule run, and nothing runs twice', async () => {
    // Finished before the backup.
    const finished = await Promise.all(Array.from({ length: 20 }, (_, i) => invoke(i, {})));
    await waitFor(
      async () => (await suite.app.sql<{ n: number }>(`select count(*)::int as n from jobs where state = 'completed'`))[0]!.n === 20,
      30_000,
    );
    // Unfinished at the backup: held behind paused queues, or delayed.
    await pauseType(suite.app.deps.queues, 'invoke');
    await pauseType(suite.app.deps.queues, 'batch');
    const queued = await Promise.all(Array.from({ length: 15 }, (_, i) => invoke(100 + i)));
    const delayed = await Promise.all(Array.from({ length: 5 }, (_, i) => invoke(200 + i, { delay_ms: 20_000 })));
    const batch = await suite.request('POST', '/api/v1/batches', {
      token: user.accessToken,
      body: { invocations: Array.from({ length: 50 }, (_, i) => ({ substrate_id: substrateId, parameters: { x: i, y: 1 } })) },
    });
    const schedule = await suite.request('POST', '/api/v1/schedules', {
      token: user.accessToken,
      body: {
        name: 'every-ten-seconds',
        every_ms: 10_000,
        job: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 7, y: 3 } } },
      },
    });
    for (const answer of [...finished, ...queued, ...delayed, batch]) expect(answer.status, answer.text).toBe(202);
    expect(schedule.status, schedule.text).toBe(201);

    const backup = await npmRun('backup', backupFile, suite.app.config.databaseUrl);
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stderr).toMatch(/backup written to .*snapshot\.tar\.gz: \d+ tables, \d+ rows, migration Migration\d+/);
    await suite.app.stopWorkers();

    const restoredUrl = await emptyDatabase();
    const restore = await npmRun('restore', backupFile, restoredUrl);
    expect(restore.code, restore.stderr).toBe(0);
    const refused = await npmRun('restore', backupFile, restoredUrl);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/Restore refused: the database is not empty/);

    const atRestore = await sqlOn<{ id: string; state: string; result: unknown }>(
      restoredUrl,
      'select id, state, result from jobs order by id',
    );
    const unfinished = atRestore.filter((job) => !['completed', 'failed', 'cancelled'].includes(job.state));
    const finishedAtBackup = atRestore.filter((job) => job.state === 'completed');
    expect(finishedAtBackup.map((job) => job.id).sort()).toEqual(finished.map((answer) => answer.body.id).sort());
    expect(new Set(unfinished.map((job) => job.state))).toEqual(new Set(['queued', 'delayed']));
    for (const answer of [...queued, ...delayed, batch]) expect(unfinished.map((job) => job.id)).toContain(answer.body.id);
    expect(await sqlOn(restoredUrl, 'select name, paused from schedules')).toEqual([{ name: 'every-ten-seconds', paused: false }]);

    // Every write that makes a job final is counted from here on: a job run twice shows up as a second write.
    await sqlOn(restoredUrl, auditTriggerSql);
    const prefix = `r-${randomBytes(5).toString('hex')}`;
    const config = { ...suite.app.config, databaseUrl: restoredUrl, queuePrefix: prefix, sweeperIntervalMs: 500 };
    const restoredAt = new Date();
    let orm: Orm | null = null;
    let workers: RunningWorkers | null = null;
    try {
      orm = await createOrm(restoredUrl);
      workers = await runWorkers({ config, orm, logger: createLogger('silent', 'test') });
      const done = await waitFor(
        async () => {
          const rows = await sqlOn<{ id: string; state: string }>(restoredUrl, 'select id, state from jobs where id = any($1::uuid[])', [
            unfinished.map((job) => job.id),
          ]);
          const runs = await sqlOn<{ n: number }>(
            restoredUrl,
            `select count(*)::int as n from jobs where schedule_name = 'every-ten-seconds' and created_at >= $1 and state = 'completed'`,
            [restoredAt],
          );
          return rows.every((row) => row.state === 'completed') && runs[0]!.n >= 1 ? { rows, scheduleRuns: runs[0]!.n } : null;
        },
        90_000,
        250,
      );

      const writes = await sqlOn<{ job_id: string; writes: number }>(
        restoredUrl,
        'select job_id, count(*)::int as writes from fault_audit group by job_id',
      );
      const finishedIds = new Set(finishedAtBackup.map((job) => job.id));
      const rerunFinished = writes.filter((row) => finishedIds.has(row.job_id)).length;
      const items = await sqlOn<{ items: number; distinct_items: number }>(
        restoredUrl,
        'select count(*)::int as items, count(distinct index)::int as distinct_items from batch_items where batch_id = $1',
        [batch.body.id],
      );
      const duplicates =
        writes.reduce((sum, row) => sum + Math.max(0, row.writes - 1), 0) + rerunFinished + (items[0]!.items - items[0]!.distinct_items);
      const finishedNow = await sqlOn<{ id: string; state: string; result: unknown }>(
        restoredUrl,
        'select id, state, result from jobs where id = any($1::uuid[]) order by id',
        [[...finishedIds]],
      );
      expect(finishedNow).toEqual(finishedAtBackup);
      expect(items[0]).toEqual({ items: 50, distinct_items: 50 });

      const counts = {
        accepted: atRestore.length,
        finishedAtBackup: finishedAtBackup.length,
        unfinishedAtBackup: unfinished.length,
        completedAfterRestore: done.rows.length,
        scheduleRunsAfterRestore: done.scheduleRuns,
        duplicates,
      };
      console.log(
        `[backup-restore] accepted ${counts.accepted} (finished at backup ${counts.finishedAtBackup}, unfinished ${counts.unfinishedAtBackup}), completed after restore ${counts.completedAfterRestore}, schedule runs after restore ${counts.scheduleRunsAfterRestore}, duplicates ${counts.duplicates}`,
      );
      expect(counts.completedAfterRestore).toBe(counts.unfinishedAtBackup);
      expect(counts.duplicates).toBe(0);

      // The sequences continue past the restored ids.
      const [{ max, next }] = (await sqlOn<{ max: string | null; next: string }>(
        restoredUrl,
        `select (select max(id) from request_logs)::text as max, nextval(pg_get_serial_sequence('request_logs', 'id'))::text as next`,
      )) as [{ max: string | null; next: string }];
      expect(BigInt(next)).toBeGreaterThan(BigInt(max ?? '0'));
    } finally {
      await workers?.close();
      await orm?.close();
      const redis = createRedis(suite.app.config.redis);
      await deleteKeys(redis, `${prefix}:*`);
      await redis.quit();
    }
  }, 240_000);

  it('restores counts kept by triggers as they were, without counting the restored rows again', async () => {
    const other = await createExpressionSubstrate(suite.request, user.accessToken, 'x + y');
    for (const type of ['DEPENDENCY', 'REFERENCE']) {
      const created = await suite.request('POST', '/api/v1/relationships', {
        token: user.accessToken,
        body: { source_id: substrateId, target_id: other, type },
      });
      expect(created.status, created.text).toBe(201);
    }
    const file = path.join(work, 'counts.tar.gz');
    expect((await npmRun('backup', file, suite.app.config.databaseUrl)).code).toBe(0);
    const target = await emptyDatabase();
    const restored = await npmRun('restore', file, target);
    expect(restored.code, restored.stderr).toBe(0);
    const counted = (url: string) =>
      sqlOn<{ customer_id: string; relationships: number }>(
        url,
        `select customer_id, relationships from customer_relationship_counts order by 1`,
      );
    const restoredCounts = await counted(target);
    expect(restoredCounts).toEqual(await counted(suite.app.config.databaseUrl));
    expect(restoredCounts.some((row) => row.relationships >= 2)).toBe(true);
    // The triggers work again after the restore.
    await sqlOn(target, `delete from relationships where type = 'REFERENCE'`);
    expect(
      (await counted(target)).some((row) => row.relationships === restoredCounts.find((r) => r.relationships >= 2)!.relationships - 1),
    ).toBe(true);
  });

  it('refuses a damaged backup before touching the database', async () => {
    const unpacked = path.join(work, 'unpacked');
    fs.mkdirSync(unpacked);
    await tar.extract({ file: backupFile, cwd: unpacked });
    fs.appendFileSync(path.join(unpacked, 'data', 'jobs.copy'), '\n');
    const damaged = path.join(work, 'damaged.tar.gz');
    await tar.create({ gzip: true, file: damaged, cwd: unpacked }, fs.readdirSync(unpacked));
    const target = await emptyDatabase();
    const restore = await npmRun('restore', damaged, target);
    expect(restore.code).toBe(1);
    expect(restore.stderr).toMatch(/Restore refused: checksum mismatch for data\/jobs\.copy/);
    expect(
      await sqlOn(
        target,
        `select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'`,
      ),
    ).toEqual([{ n: 0 }]);
  });

  // Two `npm run` processes (tsx start-up each) and a real dump and restore when pg_dump is new enough: past the
  // default 30 s on a loaded 2-core machine.
  it('--pg-dump says which pg_dump it needs when the installed one cannot read this server', { timeout: 120_000 }, async () => {
    const result = await npmRun('backup', path.join(work, 'dump.pgdump'), suite.app.config.databaseUrl, ['--pg-dump']);
    if (result.code === 0) {
      // A pg_dump as new as the server is installed: the dump restores into an empty database.
      const target = await emptyDatabase();
      const restore = await npmRun('restore', path.join(work, 'dump.pgdump'), target);
      expect(restore.code, restore.stderr).toBe(0);
      return;
    }
    expect(result.stderr).toMatch(/pg_dump (is not on PATH|\d+ cannot work with a PostgreSQL \d+ server)/);
  });
});
