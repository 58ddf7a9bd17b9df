import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ensureLocalServices, type LocalServices } from '../../ops/local-services.js';

/** The launch path of a fresh machine, for real: embedded PostgreSQL (initdb) and a redis-server child. */
describe('ensureLocalServices', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chrysalis-local-services-'));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  const portOf = (url: string) => Number(new URL(url).port);

  const accepts = (port: number) =>
    new Promise<boolean>((resolve) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });

  async function checkBoth(services: LocalServices) {
    const client = new pg.Client({ connectionString: services.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ one: number; db: string }>('select 1 as one, current_database() as db');
      expect(rows[0]).toEqual({ one: 1, db: 'chrysalis' });
    } finally {
      await client.end();
    }
    const redis = new Redis(services.redisUrl, { maxRetriesPerRequest: 1 });
    try {
      expect(await redis.ping()).toBe('PONG');
      expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    } finally {
      redis.disconnect();
    }
  }

  it('initialises and starts PostgreSQL, launches redis-server, and stops both', async () => {
    const messages: string[] = [];
    const services = await ensureLocalServices({ dataDir, preferExistingRedis: false, log: (m) => messages.push(m) });
    try {
      expect(services.databaseUrl).toMatch(/^postgresql:\/\/postgres:[0-9a-f]+@127\.0\.0\.1:\d+\/chrysalis$/);
      expect(services.redisUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      expect(services.redisUrl).not.toBe('redis://127.0.0.1:6379');
      expect(messages.some((m) => m.includes('initialising embedded PostgreSQL'))).toBe(true);
      await checkBoth(services);
    } finally {
      await services.stop();
    }
    expect(await accepts(portOf(services.databaseUrl))).toBe(false);
    expect(await accepts(portOf(services.redisUrl))).toBe(false);
    expect(fs.readFileSync(path.join(dataDir, 'postgres.port'), 'utf8')).toBe(String(portOf(services.databaseUrl)));
  }, 60_000);

  it('restarts warm after a crash left stale pid files, moving off a port that was taken meanwhile', async () => {
    // A PID that is certainly dead, as a crashed run would leave behind.
    const deadPid = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const postmasterPid = path.join(dataDir, 'postgres', 'postmaster.pid');
    const rememberedPgPort = fs.readFileSync(path.join(dataDir, 'postgres.port'), 'utf8');
    fs.writeFileSync(
      postmasterPid,
      `${deadPid}\n${path.join(dataDir, 'postgres')}\n1700000000\n${rememberedPgPort}\n\n127.0.0.1\n  0  0\nready\n`,
    );
    fs.writeFileSync(path.join(dataDir, 'redis.pid'), deadPid);
    const rememberedRedisPort = Number(fs.readFileSync(path.join(dataDir, 'redis.port'), 'utf8'));
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(rememberedRedisPort, '127.0.0.1', resolve));

    const messages: string[] = [];
    const started = Date.now();
    const services = await ensureLocalServices({ dataDir, preferExistingRedis: false, log: (m) => messages.push(m) });
    try {
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(messages.some((m) => m.includes('initialising'))).toBe(false);
      expect(messages.some((m) => m.includes('stale postmaster.pid'))).toBe(true);
      expect(portOf(services.databaseUrl)).toBe(Number(rememberedPgPort));
      expect(portOf(services.redisUrl)).not.toBe(rememberedRedisPort);
      await checkBoth(services);
    } finally {
      await services.stop();
      await new Promise((resolve) => squatter.close(resolve));
    }
  }, 60_000);

  it('uses given URLs as they are, without launching anything', async () => {
    const elsewhere = path.join(dataDir, 'untouched');
    const services = await ensureLocalServices({
      dataDir: elsewhere,
      databaseUrl: 'postgresql://u:p@db.example:5432/x',
      redisUrl: 'redis://cache.example:6379',
    });
    expect(services).toMatchObject({ databaseUrl: 'postgresql://u:p@db.example:5432/x', redisUrl: 'redis://cache.example:6379' });
    await services.stop();
    expect(fs.existsSync(elsewhere)).toBe(false);
  });
});

describe('deployment files', () => {
  it('.env.example lists every variable config.ts reads', () => {
    const schema = /const envSchema = z\.object\(\{([\s\S]*?)\n\}\);/.exec(fs.readFileSync('config.ts', 'utf8'))?.[1] ?? '';
    const names = [...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((match) => match[1]);
    expect(names.length).toBeGreaterThan(10);
    const example = fs.readFileSync('.env.example', 'utf8');
    const missing = names.filter((name) => !new RegExp(`^#? ?${name}=`, 'm').test(example));
    expect(missing).toEqual([]);
  });

  it('docker-compose.yml wires migrate → api/worker, noeviction + AOF Redis and scaled workers', () => {
    const compose = parse(fs.readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
      services: Record<
        string,
        {
          command?: string[];
          depends_on?: Record<string, { condition: string }>;
          deploy?: { replicas: number };
          environment?: Record<string, string>;
        }
      >;
    };
    const { services } = compose;
    expect(Object.keys(services).sort()).toEqual(['api', 'grafana', 'migrate', 'postgres', 'prometheus', 'redis', 'worker']);
    expect(services.migrate?.command).toEqual(['node', 'dist/ops/migrate.js']);
    for (const name of ['api', 'worker']) {
      expect(services[name]?.depends_on).toMatchObject({
        migrate: { condition: 'service_completed_successfully' },
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
      });
      expect(services[name]?.environment?.NODE_ENV).toBe('production');
    }
    expect(services.worker?.command).toEqual(['node', 'dist/workers/main.js']);
    expect(services.worker?.deploy?.replicas).toBe(2);
    expect(services.redis?.command?.join(' ')).toContain('--appendonly yes --maxmemory-policy noeviction');
  });
});
