import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { dataNodes, type RedisClient } from '../../lib/redis.js';
import { waitFor } from './http.js';

const run = promisify(execFile);

export interface LocalRedisClusterOptions {
  /** Replicas per master (`--cluster-replicas`). Default 0. */
  replicas?: number;
  /** `cluster-node-timeout`: how long a master may be unreachable before its replica takes over. Default 5000 ms. */
  nodeTimeoutMs?: number;
}

export interface LocalRedisCluster {
  /** `127.0.0.1:p1,127.0.0.1:p2,…`: what REDIS_CLUSTER_NODES takes. */
  nodes: string;
  /** Every node's port, masters and replicas. */
  ports: number[];
  /** Ports of the nodes that are masters now (and serve slots), from `CLUSTER NODES` of a live node. */
  masters(): Promise<number[]>;
  /** The replica of master `port` (the first one, if several), from `CLUSTER NODES` of a live node. */
  replicaOf(port: number): Promise<number>;
  /** SIGKILL node `port`: a crash, no shutdown, nothing saved. */
  kill(port: number): Promise<void>;
  /** `CLUSTER FAILOVER` on replica `port`: a manual, coordinated promotion (no write lost). */
  failover(port: number): Promise<void>;
  /** Resolves once `port` is a master and every live node says `cluster_state:ok`. */
  waitUntilMaster(port: number, timeoutMs?: number): Promise<void>;
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

interface ClusterNodeLine {
  port: number;
  master: boolean;
  /** Node id of its master (replicas), else null. */
  masterId: string | null;
  id: string;
  failed: boolean;
}

/** `CLUSTER NODES`: `<id> <ip:port@bus> <flags> <master-id|-> …` per line. */
function parseClusterNodes(text: string): ClusterNodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, masterId] = line.split(' ');
      const flagList = flags!.split(',');
      return {
        id: id!,
        port: Number(address!.split('@')[0]!.split(':').pop()),
        master: flagList.includes('master'),
        masterId: masterId === '-' ? null : masterId!,
        failed: flagList.includes('fail') || flagList.includes('fail?'),
      };
    });
}

/**
 * A Redis Cluster of the test's own: `masters × (1 + replicas)` redis-servers (`--cluster-enabled yes`, no
 * persistence) on spare ports in a temp dir, joined by `redis-cli --cluster create … --cluster-replicas N`,
 * ready when every node says `cluster_state:ok` (and every replica has synced). Needs `redis-server` and
 * `redis-cli` on PATH. `stop()` kills them and removes the dir.
 */
export async function startLocalRedisCluster(masters = 3, options: LocalRedisClusterOptions = {}): Promise<LocalRedisCluster> {
  // A port found free can be taken by another test file's server before redis-server binds it (the files run in
  // parallel): that node never answers, and the attempt fails; a new one picks other ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startLocalRedisClusterOnce(masters, options);
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

async function startLocalRedisClusterOnce(masters: number, options: LocalRedisClusterOptions): Promise<LocalRedisCluster> {
  const replicas = options.replicas ?? 0;
  const dir = mkdtempSync(path.join(tmpdir(), 'chrysalis-cluster-'));
  const ports: number[] = [];
  // Redis also listens on port + 10000 (the cluster bus): pick ports whose bus port is free too.
  while (ports.length < masters * (1 + replicas)) {
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
        String(options.nodeTimeoutMs ?? 5000),
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
        if (child.exitCode !== null || child.signalCode !== null) return;
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
      String(replicas),
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
    // A replica that has not finished its first sync cannot be promoted.
    await waitFor(
      async () =>
        (await Promise.all(clients.map((client) => client.info('replication').catch(() => '')))).every(
          (info) => info.includes('role:master') || info.includes('master_link_status:up'),
        ),
      30_000,
      100,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const alive = (port: number) => children[ports.indexOf(port)]!.exitCode === null && children[ports.indexOf(port)]!.signalCode === null;
  const clientOf = (port: number) => clients[ports.indexOf(port)]!;
  /** `CLUSTER NODES` as a live node sees it. */
  const clusterNodes = async () => {
    const port = ports.find(alive);
    if (port === undefined) throw new Error('every node of the cluster is down');
    return parseClusterNodes(String(await clientOf(port).cluster('NODES')));
  };
  const live = () => clientOf(ports.find(alive) ?? ports[0]!);
  return {
    nodes: ports.map((port) => `127.0.0.1:${port}`).join(','),
    ports,
    async masters() {
      return (await clusterNodes()).filter((node) => node.master && !node.failed).map((node) => node.port);
    },
    async replicaOf(port) {
      const nodes = await clusterNodes();
      const master = nodes.find((node) => node.port === port);
      const replica = nodes.find((node) => node.masterId === master?.id && !node.failed);
      if (!replica) throw new Error(`master ${port} has no replica`);
      return replica.port;
    },
    async kill(port) {
      const child = children[ports.indexOf(port)]!;
      if (!alive(port)) return;
      clientOf(port).disconnect();
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
    async failover(port) {
      const answer = await clientOf(port).cluster('FAILOVER');
      if (answer !== 'OK') throw new Error(`CLUSTER FAILOVER on ${port}: ${String(answer)}`);
    },
    async waitUntilMaster(port, timeoutMs = 30_000) {
      await waitFor(
        async () => {
          const role = await clientOf(port)
            .info('replication')
            .catch(() => '');
          if (!role.includes('role:master')) return false;
          const infos = await Promise.all(
            ports.filter(alive).map((p) =>
              clientOf(p)
                .cluster('INFO')
                .catch(() => ''),
            ),
          );
          return infos.every((info) => String(info).includes('cluster_state:ok'));
        },
        timeoutMs,
        100,
      );
    },
    async masterOfSlot(slot) {
      const ranges = (await live().cluster('SLOTS')) as unknown as Array<[number, number, [string, number, ...unknown[]]]>;
      const range = ranges.find(([from, to]) => from <= slot && slot <= to);
      if (!range) throw new Error(`no master serves slot ${slot}`);
      return Number(range[2][1]);
    },
    async keySlot(key) {
      return Number(await live().cluster('KEYSLOT', key));
    },
    stop,
  };
}

/**
 * Deletes every key matching `pattern` on every master (`KEYS` on a cluster client would ask one node at
 * random, and a multi-key `DEL` refuses keys of different slots): one `UNLINK` per key, pipelined per node.
 */
export async function deleteKeys(client: RedisClient, pattern: string): Promise<number> {
  let deleted = 0;
  for (const node of await dataNodes(client)) {
    const keys = await node.keys(pattern);
    for (let i = 0; i < keys.length; i += 500) {
      const pipeline = node.pipeline();
      for (const key of keys.slice(i, i + 500)) pipeline.unlink(key);
      await pipeline.exec();
    }
    deleted += keys.length;
  }
  return deleted;
}
