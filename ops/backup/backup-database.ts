import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import * as tar from 'tar';
import { ChecksumStream } from './checksum-stream.js';
import { listSequences, listTables, migrationTable } from './schema-catalog.js';
import {
  backupFormat,
  backupFormatVersion,
  dataFileOf,
  manifestName,
  quoted,
  type SnapshotManifest,
  type TableEntry,
} from './snapshot-manifest.js';

export interface BackupOptions {
  /** Progress lines for people. Default: none. */
  log?: (message: string) => void;
}

/**
 * Writes a consistent snapshot of the database to `file`: every table of the schema COPY'd out inside one
 * REPEATABLE READ, READ ONLY transaction (so all tables are read as of one instant while the platform keeps
 * running), the migration table with them, and the sequences' positions. The file is a gzipped tar:
 * `manifest.json` (format, migrations, per table its columns, rows, bytes and SHA-256) then `data/TABLE.copy`
 * in COPY text format. Written beside `file` and renamed over it, so a reader never sees half a backup.
 */
export async function backupDatabase(databaseUrl: string, file: string, options: BackupOptions = {}): Promise<SnapshotManifest> {
  const log = options.log ?? (() => undefined);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'chrysalis-backup-'));
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('begin isolation level repeatable read, read only');
    const serverVersion = (await client.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
    const tables = await listTables(client);
    if (!tables.some((table) => table.name === migrationTable))
      throw new Error(`no ${migrationTable} table: this is not a Chrysalis database (or the schema is not the one DATABASE_URL selects)`);
    const migrations = (await client.query<{ name: string }>(`select name from ${quoted(migrationTable)} order by id`)).rows.map(
      (row) => row.name,
    );
    fs.mkdirSync(path.join(work, 'data'));
    const entries: TableEntry[] = [];
    for (const table of tables) {
      const columns = table.columns.map(quoted).join(', ');
      // A partitioned table's rows live in its partitions; selecting from the parent reads them all.
      const source = table.partitioned ? `(select ${columns} from ${quoted(table.name)})` : `${quoted(table.name)} (${columns})`;
      const checksum = new ChecksumStream();
      await pipeline(
        client.query(copyTo(`copy ${source} to stdout`)),
        checksum,
        fs.createWriteStream(path.join(work, dataFileOf(table.name))),
      );
      entries.push({
        name: table.name,
        columns: table.columns,
        partitioned: table.partitioned,
        file: dataFileOf(table.name),
        rows: checksum.lines,
        bytes: checksum.bytes,
        sha256: checksum.digest(),
      });
      log(`  ${table.name}: ${checksum.lines} rows`);
    }
    // Sequences are not transactional: read now, they are at or past every id the snapshot holds.
    const sequences = [];
    for (const name of await listSequences(client)) {
      const { rows } = await client.query<{ last_value: string; is_called: boolean }>(
        `select last_value::text, is_called from ${quoted(name)}`,
      );
      sequences.push({ name, last_value: rows[0]!.last_value, is_called: rows[0]!.is_called });
    }
    await client.query('commit');
    const manifest: SnapshotManifest = {
      format: backupFormat,
      version: backupFormatVersion,
      created_at: new Date().toISOString(),
      server_version: serverVersion,
      migrations,
      tables: entries,
      sequences,
    };
    fs.writeFileSync(path.join(work, manifestName), JSON.stringify(manifest, null, 2) + '\n');
    const partial = `${file}.partial-${process.pid}`;
    try {
      await tar.create({ gzip: true, file: partial, cwd: work, portable: true }, [manifestName, ...entries.map((entry) => entry.file)]);
      fs.renameSync(partial, file);
    } catch (error) {
      fs.rmSync(partial, { force: true });
      throw error;
    }
    return manifest;
  } finally {
    await client.end().catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
}
