import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import * as tar from 'tar';
import { createOrm } from '../../db/orm.js';
import { ChecksumStream } from './checksum-stream.js';
import { countRelations, listForeignKeys, listTables, loadOrder } from './schema-catalog.js';
import { manifestName, manifestSchema, quoted, type SnapshotManifest, type TableEntry } from './snapshot-manifest.js';

export interface RestoreOptions {
  log?: (message: string) => void;
}

/** The advisory lock `migrate()` takes (db/orm.ts): a restore's migrations wait for, and hold off, any other migrator. */
const migrationLock = 7_231_994;

/** Thrown when the restore is refused before anything was written (damaged file, non-empty database, unknown migration). */
export class RestoreRefused extends Error {
  override name = 'RestoreRefused';
}

/** Unpacks a backup into a temp folder and checks every data file against the manifest's size and SHA-256. */
async function unpackAndVerify(file: string, work: string): Promise<SnapshotManifest> {
  if (!fs.existsSync(file)) throw new RestoreRefused(`${file}: no such file`);
  await tar.extract({ file, cwd: work, strict: true }).catch((error: unknown) => {
    throw new RestoreRefused(`${file} is not a readable Chrysalis backup (${error instanceof Error ? error.message : String(error)})`);
  });
  const manifestPath = path.join(work, manifestName);
  if (!fs.existsSync(manifestPath)) throw new RestoreRefused(`${file} has no ${manifestName}: not a Chrysalis backup`);
  const parsed = manifestSchema.safeParse(JSON.parse(fs.readFileSync(manifestPath, 'utf8')));
  if (!parsed.success)
    throw new RestoreRefused(
      `${file}: its manifest is not one this version reads (${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')})`,
    );
  for (const table of parsed.data.tables) {
    const dataPath = path.join(work, table.file);
    if (!fs.existsSync(dataPath)) throw new RestoreRefused(`${file} lacks ${table.file}, listed in its manifest`);
    const checksum = new ChecksumStream();
    await pipeline(fs.createReadStream(dataPath), checksum, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) void chunk;
    });
    if (checksum.digest() !== table.sha256 || checksum.bytes !== table.bytes) {
      throw new RestoreRefused(
        `checksum mismatch for ${table.file} (sha256 or size differs from the manifest): the backup is damaged; nothing was restored`,
      );
    }
  }
  return parsed.data;
}

/** The snapshot's migrations must be the first ones this version knows, in order. */
function checkMigrations(snapshot: string[], known: string[]): void {
  snapshot.forEach((name, index) => {
    if (known[index] !== name) {
      throw new RestoreRefused(
        known.includes(name)
          ? `the backup's migrations are not in this version's order (${name} at ${index}); restore with the version that made it`
          : `the backup was made by a newer Chrysalis (migration ${name} is unknown here); restore it with that version or a later one`,
      );
    }
  });
}

/**
 * Loads a backup into an EMPTY database (it refuses any other): checks every data file's checksum first,
 * runs the migrations up to the snapshot's level, then in one transaction empties what the migrations
 * seeded, COPYs every table in foreign-key order (the migration table included), checks the row counts and
 * sets every sequence to its snapshot position. Later migrations of this version run at the next start.
 * Redis is not touched: workers started on the restored database re-enqueue the accepted, unfinished jobs
 * (the sweeper) and write the active schedules back (at start-up).
 */
export async function restoreDatabase(databaseUrl: string, file: string, options: RestoreOptions = {}): Promise<SnapshotManifest> {
  const log = options.log ?? (() => undefined);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'chrysalis-restore-'));
  try {
    const manifest = await unpackAndVerify(file, work);
    log(`backup of ${manifest.created_at}: ${manifest.tables.length} tables, checksums verified`);
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const relations = await countRelations(client);
      if (relations > 0) {
        throw new RestoreRefused(
          `the database is not empty (${relations} tables, views or sequences): restore into a new, empty database (e.g. createdb, then DATABASE_URL pointing at it; for the embedded default, move .data/postgres aside first)`,
        );
      }
      await migrateTo(databaseUrl, manifest.migrations);
      log(`migrated to ${manifest.migrations.at(-1)}`);
      await loadTables(client, work, manifest, log);
      await client.query('analyze');
    } finally {
      await client.end().catch(() => undefined);
    }
    return manifest;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function migrateTo(databaseUrl: string, migrations: string[]): Promise<void> {
  const orm = await createOrm(databaseUrl, { poolMax: 2 });
  try {
    const migrator = orm.getMigrator();
    checkMigrations(
      migrations,
      (await migrator.getPendingMigrations()).map((migration) => migration.name),
    );
    const knex = orm.em.getConnection().getKnex();
    await knex.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?)', [migrationLock]);
      await migrator.up({ transaction: trx, to: migrations.at(-1) });
    });
  } finally {
    await orm.close();
  }
}

async function loadTables(client: pg.Client, work: string, manifest: SnapshotManifest, log: (message: string) => void): Promise<void> {
  const byName = new Map(manifest.tables.map((table) => [table.name, table]));
  const present = new Map((await listTables(client)).map((table) => [table.name, table]));
  for (const table of manifest.tables) {
    const columns = present.get(table.name)?.columns;
    const missing = table.columns.filter((column) => !columns?.includes(column));
    if (missing.length > 0)
      throw new Error(
        `after the migrations, ${table.name} lacks ${columns ? `columns ${missing.join(', ')}` : 'the table itself'}: the backup does not match its migrations`,
      );
  }
  const order = loadOrder([...byName.keys()], await listForeignKeys(client));
  await client.query('begin');
  try {
    // Migrations may seed rows (the migration table's own among them); the snapshot's rows replace them.
    await client.query(`truncate ${order.map(quoted).join(', ')}`);
    // The snapshot's rows go in as they were, derived ones too (customer_relationship_counts): the tables' own
    // triggers (that keep such rows) must not fire for them, or they would count the restored rows again. Foreign
    // keys are system triggers and stay checked. Undone by the commit's `enable` below, or by the rollback.
    for (const name of order) await client.query(`alter table ${quoted(name)} disable trigger user`);
    for (const name of order) {
      const table = byName.get(name)!;
      const loaded = await copyIn(client, work, table);
      if (loaded !== table.rows) throw new Error(`${table.name}: loaded ${loaded} rows, the manifest says ${table.rows}`);
      log(`  ${table.name}: ${loaded} rows`);
    }
    for (const name of order) await client.query(`alter table ${quoted(name)} enable trigger user`);
    for (const sequence of manifest.sequences) {
      await client.query(`select setval($1::regclass, $2::bigint, $3)`, [quoted(sequence.name), sequence.last_value, sequence.is_called]);
    }
    await client.query('commit');
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  }
}

async function copyIn(client: pg.Client, work: string, table: TableEntry): Promise<number> {
  const copy = client.query(copyFrom(`copy ${quoted(table.name)} (${table.columns.map(quoted).join(', ')}) from stdin`));
  await pipeline(fs.createReadStream(path.join(work, table.file)), copy);
  return copy.rowCount ?? 0;
}
