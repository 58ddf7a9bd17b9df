import { spawnSync } from 'node:child_process';
import pg from 'pg';

/**
 * `--pg-dump`: the same backup and restore through PostgreSQL's own tools, for a server whose pg_dump is on
 * PATH and of at least its major version (pg_dump refuses newer servers: Debian 12's pg_dump 15 against the
 * embedded PostgreSQL 18 does). The file is pg_dump's custom format; `restore` recognises it by its header.
 */
function toolMajor(tool: 'pg_dump' | 'pg_restore'): number {
  const run = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  if (run.error || run.status !== 0)
    throw new Error(
      `${tool} is not on PATH; install the PostgreSQL client tools of your server's version, or leave out --pg-dump (the default backup needs none)`,
    );
  const major = /\(PostgreSQL\)\s+(\d+)/.exec(run.stdout)?.[1];
  if (!major) throw new Error(`cannot read the version of ${tool} from "${run.stdout.trim()}"`);
  return Number(major);
}

async function serverMajor(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return Math.floor(
      Number((await client.query<{ server_version_num: string }>('show server_version_num')).rows[0]!.server_version_num) / 10_000,
    );
  } finally {
    await client.end();
  }
}

async function checkToolVersion(tool: 'pg_dump' | 'pg_restore', databaseUrl: string): Promise<void> {
  const [mine, server] = [toolMajor(tool), await serverMajor(databaseUrl)];
  if (mine < server) {
    throw new Error(
      `${tool} ${mine} cannot work with a PostgreSQL ${server} server; install ${tool} ${server} or later, or leave out --pg-dump (the default backup reads the database itself)`,
    );
  }
}

function run(tool: string, args: string[]): void {
  const result = spawnSync(tool, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${tool} exited with code ${result.status}`);
}

export async function pgDumpBackup(databaseUrl: string, file: string): Promise<void> {
  await checkToolVersion('pg_dump', databaseUrl);
  run('pg_dump', ['--format=custom', '--no-owner', '--no-privileges', `--file=${file}`, `--dbname=${databaseUrl}`]);
}

export async function pgRestore(databaseUrl: string, file: string): Promise<void> {
  await checkToolVersion('pg_restore', databaseUrl);
  run('pg_restore', ['--no-owner', '--no-privileges', '--single-transaction', '--exit-on-error', `--dbname=${databaseUrl}`, file]);
}

/** pg_dump's custom format starts with these bytes; a Chrysalis backup is a gzip (1f 8b). */
export const isPgDumpFile = (header: Buffer): boolean => header.subarray(0, 5).toString('latin1') === 'PGDMP';
