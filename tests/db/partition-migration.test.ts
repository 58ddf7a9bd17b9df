import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { uuidv7Floor } from '../../db/jobs/expire-jobs.js';
import { jobPartitionName } from '../../db/jobs/job-partitions.js';
import { createOrm, type Orm } from '../../db/orm.js';

/**
 * The hand-written migration that partitions `jobs` and `batch_items` (db/migrations/Migration20261204101500.ts),
 * on a database with rows: up keeps every row, key and index; down gives the unpartitioned tables back.
 */
const partitioning = 'Migration20261204101500';
const before = 'Migration20261204012305';

const database = `chrysalis_m_${randomBytes(5).toString('hex')}`;
let admin: pg.Client;
let client: pg.Client;
let orm: Orm;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
  await admin.connect();
  await admin.query(`create database ${database}`);
  const url = new URL(inject('adminDatabaseUrl'));
  url.pathname = `/${database}`;
  orm = await createOrm(url.toString(), { poolMax: 2 });
  client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await orm?.close();
  await admin?.query(`drop database if exists ${database} with (force)`);
  await admin?.end();
});

const day = 86_400_000;
const week = 7 * day;
const hex = (digits: number) => randomBytes(8).toString('hex').slice(0, digits);
const idAt = (at: Date) => `${uuidv7Floor(at).slice(0, 14)}7${hex(3)}-8${hex(3)}-${hex(12)}`;
const partitionOf = (at: Date) => jobPartitionName(Math.floor(at.getTime() / week) * week);
const rows = async <Row>(text: string, params: unknown[] = []) => (await client.query(text, params)).rows as Row[];
const kindOf = async (table: string) =>
  (await rows<{ relkind: string }>(`select relkind from pg_class where relname = $1`, [table]))[0]?.relkind;
const indexesOf = async (table: string) =>
  (await rows<{ indexname: string }>(`select indexname from pg_indexes where tablename = $1`, [table])).map((row) => row.indexname).sort();

describe('partitioning migration', () => {
  const customer = randomUUID();
  const old = new Date(Date.now() - 20 * day);
  const oldJob = idAt(old);
  const batch = idAt(new Date(Date.now() - 3 * day));
  const keyed = idAt(new Date());
  // A scheduled run recorded by an early version: a UUIDv8, not time-ordered.
  const v8 = `${hex(8)}-${hex(4)}-8${hex(3)}-8${hex(3)}-${hex(12)}`;
  let indexesBefore: string[];

  it('upgrades a database with rows: every row, key and index kept, rows in their week’s partition', async () => {
    await orm.getMigrator().up({ to: before });
    const insert = (id: string, type: string, key: string | null, created: Date) =>
      client.query(
        `insert into jobs (id, customer_id, type, state, payload, idempotency_key, request_hash, created_at) values ($1, $2, $3, 'completed', '{"a":1}', $4, 'h', $5)`,
        [id, customer, type, key, created.toISOString()],
      );
    await insert(oldJob, 'invoke', 'key-old', old);
    await insert(batch, 'batch', null, new Date());
    await insert(keyed, 'invoke', 'key-new', new Date());
    await insert(v8, 'invoke', null, new Date());
    await client.query(
      `insert into batch_items (batch_id, index, substrate_id, state, result) values ($1, 0, 's', 'completed', '1'), ($1, 1, 's', 'failed', null)`,
      [batch],
    );
    indexesBefore = (await indexesOf('jobs')).filter((name) => name !== 'jobs_customer_idempotency_key_unique');

    await orm.getMigrator().up({ to: partitioning });

    expect(await kindOf('jobs')).toBe('p');
    expect(await kindOf('batch_items')).toBe('p');
    expect(await rows(`select id, payload from jobs order by id`)).toHaveLength(4);
    const [where] = await rows<{ partition: string }>(`select tableoid::regclass::text as partition from jobs where id = $1`, [oldJob]);
    expect(where?.partition).toBe(partitionOf(old));
    expect(await rows(`select batch_id, index from batch_items where batch_id = $1`, [batch])).toHaveLength(2);
    expect(await rows(`select customer_id, idempotency_key, job_id from job_idempotency_keys order by idempotency_key`)).toEqual([
      { customer_id: customer, idempotency_key: 'key-new', job_id: keyed },
      { customer_id: customer, idempotency_key: 'key-old', job_id: oldJob },
    ]);
    expect(await indexesOf('jobs')).toEqual(indexesBefore);
    // Partitions up to two weeks ahead; the foreign key still cascades from jobs to batch items.
    expect(await kindOf(partitionOf(new Date(Date.now() + 2 * week)))).toBe('r');
    await client.query(`delete from jobs where id = $1`, [batch]);
    expect(await rows(`select 1 from batch_items`)).toEqual([]);
    await client.query(
      `insert into jobs (id, customer_id, type, state, payload, created_at) values ($1, $2, 'batch', 'completed', '{}', now())`,
      [batch, customer],
    );
    await client.query(`insert into batch_items (batch_id, index, substrate_id, state) values ($1, 0, 's', 'completed')`, [batch]);
    await expect(
      client.query(`insert into batch_items (batch_id, index, substrate_id, state) values ($1, 0, 's', 'completed')`, [randomUUID()]),
    ).rejects.toThrow(/foreign key/);
  });

  it('rolls back to unpartitioned tables with the unique key, a key taken over since staying with its new job', async () => {
    // After its 24 hours, key-old named a new job: the old job's row still carries the key text.
    const takeover = idAt(new Date());
    await client.query(
      `insert into jobs (id, customer_id, type, state, payload, idempotency_key, created_at) values ($1, $2, 'invoke', 'queued', '{}', 'key-old', now())`,
      [takeover, customer],
    );
    await client.query(`update job_idempotency_keys set job_id = $1 where idempotency_key = 'key-old'`, [takeover]);

    await orm.getMigrator().down();

    expect(await kindOf('jobs')).toBe('r');
    expect(await kindOf('batch_items')).toBe('r');
    expect(await kindOf('job_idempotency_keys')).toBeUndefined();
    expect(await kindOf(partitionOf(old))).toBeUndefined();
    expect(await rows(`select 1 from jobs`)).toHaveLength(5);
    expect(await rows(`select id, idempotency_key from jobs where idempotency_key is not null order by idempotency_key`)).toEqual([
      { id: keyed, idempotency_key: 'key-new' },
      { id: takeover, idempotency_key: 'key-old' },
    ]);
    expect(await indexesOf('jobs')).toEqual([...indexesBefore, 'jobs_customer_idempotency_key_unique'].sort());
    expect(await rows(`select 1 from batch_items`)).toHaveLength(1);
    await expect(
      client.query(
        `insert into jobs (id, customer_id, type, state, payload, idempotency_key) values ($1, $2, 'invoke', 'queued', '{}', 'key-new')`,
        [randomUUID(), customer],
      ),
    ).rejects.toThrow(/jobs_customer_idempotency_key_unique/);
  });

  it('migrates up again from the rolled-back tables', async () => {
    await orm.getMigrator().up();
    expect(await kindOf('jobs')).toBe('p');
    expect(await rows(`select 1 from jobs`)).toHaveLength(5);
    expect(await rows(`select idempotency_key from job_idempotency_keys order by 1`)).toEqual([
      { idempotency_key: 'key-new' },
      { idempotency_key: 'key-old' },
    ]);
  });
});
