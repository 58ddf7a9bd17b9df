import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { registerUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { testRedisTarget } from '../helpers/redis-target.js';
import { getJobDefinition } from '../../jobs/registry.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import { Sweeper } from '../../workers/sweeper.js';

/** What a sweep costs Redis per unfinished row, counted by MONITOR (one node: a cluster has a monitor per master). */
const oneNode = process.env.TEST_REDIS_CLUSTER !== '1';
const apps: TestApp[] = [];

afterAll(async () => {
  for (const app of apps) await app.close();
});

/** An app with no workers, `rows` queued jobs of one customer aged past the sweeper's grace, and a sweeper of its own. */
async function queuedBacklog(fairSharing: boolean, rows: number, bundleSize = 1) {
  const app = await startTestApp({
    SWEEPER_INTERVAL_MS: '3600000',
    FAIR_SHARING: String(fairSharing),
    JOB_BUNDLE_SIZE: String(bundleSize),
  });
  apps.push(app);
  const request = httpClient(app.baseUrl);
  const user = await registerUser(request);
  const customerId = (await request('GET', '/api/v1/auth/me', { token: user.accessToken })).body.customer_id as string;
  const substrate = await createExpressionSubstrate(request, user.accessToken, 'x * 2');
  const { deps, config } = app;
  // No workers run here: the jobs stay queued (in BullMQ, or held in the customer's lanes).
  for (let start = 0; start < rows; start += 1000)
    await submitJobsBulk(
      { em: deps.orm.em, queues: deps.queues, fair: deps.fair, logger: deps.logger, cache: deps.cache },
      customerId,
      getJobDefinition('invoke')!,
      Array.from({ length: Math.min(1000, rows - start) }, (_, x) => ({ substrate_id: substrate, parameters: { x: start + x } })),
    );
  await app.sql(`update jobs set created_at = created_at - interval '1 minute' where customer_id = $1`, [customerId]);
  const sweeper = new Sweeper({
    orm: deps.orm,
    redis: deps.redis,
    queues: deps.queues,
    fair: deps.fair,
    prefix: config.queuePrefix,
    logger: deps.logger,
  });
  return { app, customerId, sweeper };
}

/** Redis commands (Lua's own included) naming the app's keys while one sweep checks `rows` queued jobs of one customer. */
async function sweepCommands(fairSharing: boolean, rows: number, bundleSize = 1) {
  const { app, sweeper } = await queuedBacklog(fairSharing, rows, bundleSize);
  const { config } = app;
  // ioredis's MONITOR parser can report a "command queue state error" when other files' traffic floods it while
  // the suite runs in parallel; a dropped line changes no assertion's outcome here, an unhandled error would fail the
  // run. So the handler is in place before the connection opens: with `redis.monitor()` it came after, and lines
  // parsed with the monitor's own OK (one busy socket read) raised errors nobody handled.
  const monitor = new Redis(testRedisTarget() as string, { monitor: true, lazyConnect: true });
  monitor.on('error', () => undefined);
  const monitoring = new Promise((resolve) => monitor.once('monitoring', resolve));
  await monitor.connect();
  await monitoring;
  const commands: string[] = [];
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args.some((arg) => arg.startsWith(`${config.queuePrefix}:`))) commands.push(args[0]!.toLowerCase());
  });
  const report = await sweeper.sweep();
  await new Promise((resolve) => setTimeout(resolve, 200));
  monitor.disconnect();
  return { report, commands };
}

describe.runIf(oneNode)('sweeper cost', () => {
  it('checks each queued row in Redis with one command (an HMGET of its BullMQ job), not four', async () => {
    const { report, commands } = await sweepCommands(false, 1000);
    expect(report).toMatchObject({ checked: 1000, reenqueued: 0, reconciled: 0 });
    // The sweep before this counted four a row: EXISTS, two ZSCOREs and an HMGET.
    expect(commands.filter((command) => command === 'hmget')).toHaveLength(1000);
    expect(commands.length).toBeLessThan(1000 * 1.2);
  });

  it('checks bundled rows with one HMGET per bundle (queue/bundles.ts), not one per row', async () => {
    const { report, commands } = await sweepCommands(false, 1000, 50);
    expect(report).toMatchObject({ checked: 1000, reenqueued: 0, reconciled: 0 });
    expect(commands.filter((command) => command === 'hmget')).toHaveLength(20);
    expect(commands.length).toBeLessThan(1000 * 0.05);
  });

  it('with fair sharing, passes held rows over at a few commands per customer and shard, not one more per row', async () => {
    const { report, commands } = await sweepCommands(true, 1000);
    expect(report).toMatchObject({ checked: 1000, reenqueued: 0, reconciled: 0 });
    // An HMGET a row, then per shard one relane call that finds the customer's lane list non-empty.
    expect(commands.length).toBeLessThan(1000 * 1.2);
  });
});

describe('sweeper: a job key Redis cannot read as a job', () => {
  it('is not taken for a lost job (nothing is enqueued again), and the other rows are checked as usual', async () => {
    const { app, customerId, sweeper } = await queuedBacklog(false, 3);
    const [row] = await app.sql<{ id: string }>(`select id from jobs where customer_id = $1 order by id limit 1`, [customerId]);
    const id = row!.id;
    const queue = app.deps.queues.forJob('invoke', id);
    // A worker runs it (its row says so), and something else took its key: HMGET answers WRONGTYPE for it alone.
    await app.sql(`update jobs set state = 'active', started_at = now() where id = $1`, [id]);
    await app.deps.redis.del(queue.toKey(id));
    await app.deps.redis.set(queue.toKey(id), 'not a job');
    expect(await sweeper.sweep()).toMatchObject({ checked: 3, reenqueued: 0, reconciled: 0 });
    // Not taken for lost: its row is not put back to queued, and its key is left alone.
    expect((await app.sql<{ state: string }>(`select state from jobs where id = $1`, [id]))[0]?.state).toBe('active');
    expect(await app.deps.redis.type(queue.toKey(id))).toBe('string');
  });
});
