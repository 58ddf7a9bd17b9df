/**
 * `npm run backup -- FILE [--pg-dump]` and `npm run restore -- FILE`: PostgreSQL is found like `npm run migrate`
 * finds it (DATABASE_URL, else the embedded one under DATA_DIR; `.env` is read). Redis is not needed.
 *
 * The default backup reads the database itself (ops/backup/backup-database.ts): no pg_dump, so it works with the
 * embedded PostgreSQL, which ships none. `--pg-dump` uses pg_dump/pg_restore where a compatible one is installed.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { ensureServicesForEnv, loadDotEnv } from '../local-services.js';
import { backupDatabase } from './backup-database.js';
import { isPgDumpFile, pgDumpBackup, pgRestore } from './pg-dump.js';
import { restoreDatabase, RestoreRefused } from './restore-database.js';
import { countRelations } from './schema-catalog.js';
import pg from 'pg';

const say = (message: string) => process.stderr.write(`[chrysalis] ${message}\n`);

const usage = 'usage: npm run backup -- FILE [--pg-dump]  |  npm run restore -- FILE';

function firstBytes(file: string): Buffer {
  const handle = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(5);
    fs.readSync(handle, buffer, 0, 5, 0);
    return buffer;
  } finally {
    fs.closeSync(handle);
  }
}

async function refuseNonEmpty(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const relations = await countRelations(client);
    if (relations > 0)
      throw new RestoreRefused(`the database is not empty (${relations} tables, views or sequences): restore into a new, empty database`);
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { 'pg-dump': { type: 'boolean', default: false } } });
  const [command, file] = positionals;
  if ((command !== 'backup' && command !== 'restore') || !file || positionals.length > 2) throw new Error(usage);
  loadDotEnv();
  const services = await ensureServicesForEnv(process.env, { log: say, redis: false });
  const databaseUrl = services.databaseUrl;
  const started = Date.now();
  try {
    if (command === 'backup') {
      if (values['pg-dump']) {
        await pgDumpBackup(databaseUrl, file);
        say(`backup written to ${file} by pg_dump (custom format) in ${Date.now() - started} ms`);
        return;
      }
      const manifest = await backupDatabase(databaseUrl, file, { log: say });
      const rows = manifest.tables.reduce((sum, table) => sum + table.rows, 0);
      say(
        `backup written to ${file}: ${manifest.tables.length} tables, ${rows} rows, migration ${manifest.migrations.at(-1)}, in ${Date.now() - started} ms`,
      );
      return;
    }
    if (!fs.existsSync(file)) throw new RestoreRefused(`${file}: no such file`);
    if (values['pg-dump'] || isPgDumpFile(firstBytes(file))) {
      await refuseNonEmpty(databaseUrl);
      await pgRestore(databaseUrl, file);
      say(`restored ${file} with pg_restore in ${Date.now() - started} ms; start the platform (npm start) to run the pending jobs`);
      return;
    }
    const manifest = await restoreDatabase(databaseUrl, file, { log: say });
    const rows = manifest.tables.reduce((sum, table) => sum + table.rows, 0);
    say(
      `restored ${file} (${manifest.created_at}): ${rows} rows in ${Date.now() - started} ms; start the platform (npm start) to run the accepted, unfinished jobs and the schedules`,
    );
  } finally {
    await services.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(
      `${error instanceof RestoreRefused ? 'Restore refused' : 'Failed'}: ${error instanceof Error ? error.message : String(error)}`,
    );
    process.exit(1);
  },
);
