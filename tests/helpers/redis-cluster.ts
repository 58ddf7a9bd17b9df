import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { waitFor } from './http.js';

const run = promisify(execFile);

export interface LocalRedisCluster {
  /** `127.0.0.1:p1,127.0.0.1:p2,…`: what REDIS_CLUSTER_NODES takes. */
  nodes: string;
  ports: number[];
  /** The master serving a hash slot (its port), from `CLUSTER SLOTS`. */
  masterOfSlot(slot: number): Promise<number>;
  /** `CLUSTER KEYSLOT key`. */
  keySlot(key: string): Promise<number>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A Redis Cluster of the test's own: `masters` redis-servers (`--cluster-enabled yes`, no persistence) on
 * spare ports in a temp dir, joined by `redis-cli --cluster create … --cluster-replicas 0`, ready when
 * every node says `cluster_state:ok`. Needs `redis-server` and `redis-cli` on PATH. `stop()` kills them
 * and removes the dir.
 */
export async function startLocalRedisCluster(masters = 3): Promise<LocalRedisCluster> {
  const dir = mkdtempSync(path.join(tmpdir(), 'chrysalis-cluster-'));
  const ports: number[] = [];
  // Redis also listens on port + 10000 (the cluster bus): pick ports whose bus port is free too.
  while (ports.length < masters) {
    const port = await freePort();
    if (port > 55_000 || ports.includes(port)) continue;
    const bus = net.createServer();
    const busFree = await new Promise<boolean>((resolve) => {
      bus.once('error', () => resolve(false));
      bus.listen(port + 10_000, '127.0.0.1', () => resolve(true));
    });
    if (busFree) await new Promise((resolve) => bus.close(resolve));
    if (busFree) ports.push(port);
  }
  const children: ChildProcess[] = ports.map((port) =>
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        path.join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '5000',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: 'ignore' },
    ),
  );
  const clients = ports.map((port) => {
    const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
    client.on('error', () => undefined);
    return client;
  });
  const stop = async () => {
    for (const client of clients) client.disconnect();
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(clients.map((client) => client.connect().catch(() => undefined)));
    await waitFor(async () =>
      (await Promise.all(clients.map((client) => client.ping().catch(() => null)))).every((pong) => pong === 'PONG'),
    );
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    await waitFor(
      async () =>
        (await Promise.all(clients.map((client) => client.cluster('INFO').catch(() => '')))).every((info) =>
          String(info).includes('cluster_state:ok'),
        ),
      30_000,
      100,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const first = clients[0]!;
  return {
    nodes: ports.map((port) => `127.0.0.1:${port}`).join(','),
    ports,
    async masterOfSlot(slot) {
      const ranges = (await first.cluster('SLOTS')) as unknown as Array<[number, number, [string, number, ...unknown[]]]>;
      const range = ranges.find(([from, to]) => from <= slot && slot <= to);
      if (!range) throw new Error(`no master serves slot ${slot}`);
      return Number(range[2][1]);
    },
    async keySlot(key) {
      return Number(await first.cluster('KEYSLOT', key));
    },
    stop,
  };
}
