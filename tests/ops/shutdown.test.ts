import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrm } from '../../db/orm.js';
import { getJobDefinition } from '../../jobs/registry.js';
import { bullJob, jobCounts } from '../helpers/queues.js';
import { runWorkers } from '../../workers/run-workers.js';
import { submitJob } from '../../queue/submit-job.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { redisEnv } from '../helpers/redis-target.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { freePort } from '../../ops/local-services.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let customerId: string;

beforeAll(async () => {
  // Task timeout 60 s so the runaway expression below is still running at the shutdown deadline.
  // FIFO: BullMQ's completed set witnesses exactly-once here, one BullMQ job a job (fair sharing's release bundles them).
  app = await startTestApp({ TASK_TIMEOUT_MS: '60000', SWEEPER_INTERVAL_MS: '3600000', FAIR_SHARING: 'false' });
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  customerId = (await request('GET', '/api/v1/auth/me', { token: alice.accessToken })).body.customer_id;
});

afterAll(async () => {
  await app?.close();
});

async function createSubstrate(expression: string): Promise<string> {
  const created = await request('POST', '/api/v1/substrates', {
    token: alice.accessToken,
    body: { expression_type: 'expression', expression },
  });
  expect(created.status, created.text).toBeLessThan(300);
  return created.body.substrate_id;
}

/** `tsx <entry>` (workers/main.ts by default) against this file's database and queues; its JSON log lines are collected. */
function spawnWorker(
  entry = 'workers/main.ts',
  extraEnv: Record<string, string> = {},
): { child: ChildProcess; logs: Array<Record<string, unknown>>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      DATA_DIR: '.data/test',
      DATABASE_URL: app.config.databaseUrl,
      ...redisEnv(app.config.redis),
      QUEUE_PREFIX: app.config.queuePrefix,
      // BullMQ's completed set is this test's exactly-once witness: no trim of durable completions here.
      FINISHED_JOB_TRIM_INTERVAL_MS: '0',
      ADMIN_EMAIL: app.config.adminEmail,
      ADMIN_PASSWORD: app.config.adminPassword,
      LOG_LEVEL: 'info',
      PISCINA_THREADS: '2',
      WORKER_CONCURRENCY: '8',
      WORKER_METRICS_PORT: '0',
      SWEEPER_INTERVAL_MS: '3600000',
      FAIR_SHARING: 'false',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line));
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, logs, exited };
}

const counts = async () =>
  (
    await app.sql<{ completed: number; failed: number; active: number }>(
      `select count(*) filter (where state = 'completed')::int as completed, count(*) filter (where state = 'failed')::int as failed,
            count(*) filter (where state = 'active')::int as active
       from jobs where customer_id = $1 and type = 'invoke'`,
      [customerId],
    )
  )[0]!;

describe('graceful worker shutdown', () => {
  it(
    'SIGTERM during a busy run of 1,000 jobs exits 0 within 30 s, and after a restart every job completes exactly once',
    { timeout: 180_000 },
    async () => {
      const substrateId = await createSubstrate('x * 2');
      const definition = getJobDefinition('invoke')!;
      const ids: string[] = [];
      for (let start = 0; start < 1000; start += 50) {
        const batch = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            submitJob(
              { em: app.deps.orm.em.fork(), queues: app.deps.queues, logger: app.deps.logger, fair: app.deps.fair },
              { customerId, definition, payload: { substrate_id: substrateId, parameters: { x: start + i } } },
            ),
          ),
        );
        for (const outcome of batch) if (outcome.kind === 'created') ids.push(outcome.job.id);
      }
      expect(new Set(ids).size).toBe(1000);

      const first = spawnWorker();
      // Its workers take jobs while the process still starts (on a cluster, seconds of connections), before its
      // SIGTERM handler is in place: signal it once it has logged 'workers running' (just before) and is busy.
      await waitFor(async () => first.logs.some((line) => line.msg === 'workers running') && (await counts()).completed >= 200, 60_000, 10);
      const signalledAt = Date.now();
      first.child.kill('SIGTERM');
      const atSignal = await counts();
      const code = await first.exited;
      const exitMs = Date.now() - signalledAt;
      const afterFirst = await counts();
      expect(code).toBe(0);
      expect(exitMs).toBeLessThan(30_000);
      expect(afterFirst.completed).toBeLessThan(1000); // it really was busy: work was left for the next worker
      const stopped = first.logs.find((line) => line.msg === 'worker stopped');
      expect(stopped).toMatchObject({ drained: true, handedBack: 0 });

      const secondStarted = Date.now();
      const second = spawnWorker();
      const done = await waitFor(
        async () => {
          const now = await counts();
          return now.completed === 1000 && now;
        },
        120_000,
        100,
      );
      const secondMs = Date.now() - secondStarted;
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);

      expect(done).toMatchObject({ completed: 1000, failed: 0, active: 0 });
      const rows = await app.sql<{ attempts_made: number; x: number; value: number }>(
        `select attempts_made, (payload->'parameters'->>'x')::int as x, (result->>'result')::int as value from jobs where id = any($1::uuid[])`,
        [ids],
      );
      // One attempt each, each with its own right answer: no job ran twice to completion, none was lost.
      expect(rows.every((row) => row.attempts_made === 1 && row.value === row.x * 2)).toBe(true);
      const queueCounts = await jobCounts(app.deps.queues, 'invoke', 'completed', 'failed', 'waiting', 'active');
      expect(queueCounts).toEqual({ completed: 1000, failed: 0, waiting: 0, active: 0 });

      console.info(
        `[shutdown figures] 1,000 jobs; SIGTERM after ${atSignal.completed} completed (${atSignal.active} active); first worker exited 0 ` +
          `${exitMs} ms after the signal (its report: drained=${String(stopped?.drained)}, handedBack=${String(stopped?.handedBack)}, ` +
          `close ${String(stopped?.elapsedMs)} ms, total ${String(stopped?.totalMs)} ms) with ${afterFirst.completed} completed; ` +
          `the second worker completed the other ${1000 - afterFirst.completed} in ${secondMs} ms (start-up included)`,
      );
    },
  );

  it('a job running at the deadline is handed back and reads queued; the next worker completes it', { timeout: 120_000 }, async () => {
    const thousand = Array.from({ length: 1000 }, (_, i) => i);
    const substrateId = await createSubstrate('l.map(a, l.map(b, l.map(c, a * b * c).size()).size()).size()');
    const orm = await createOrm(app.config.databaseUrl);
    const workers = await runWorkers({ config: app.config, orm, logger: app.deps.logger });
    const submitted = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      body: { parameters: { l: thousand } },
    });
    const jobId: string = submitted.body.id;
    await waitFor(async () => (await app.sql(`select 1 from jobs where id = $1 and state = 'active'`, [jobId])).length === 1);

    const report = await workers.close(300);
    const handedBackAt = Date.now();
    await orm.close();
    expect(report).toMatchObject({ drained: false, handedBack: 1 });

    const job = (await bullJob(app.deps.queues, 'invoke', jobId))!;
    expect(await job.getState()).toBe('waiting');
    expect(job.attemptsMade).toBe(0);
    // The row reads as before the attempt, as BullMQ's job does: queued, no attempt spent, never started. The
    // aborted processor's failure was not recorded.
    const [row] = await app.sql(`select state, error, attempts_made, started_at, progress from jobs where id = $1`, [jobId]);
    expect(row).toEqual({ state: 'queued', error: null, attempts_made: 0, started_at: null, progress: null });
    const polled = await request('GET', `/api/v1/jobs/${jobId}`, { token: alice.accessToken });
    expect(polled.body).toMatchObject({ state: 'queued', attempts_made: 0, progress: 0 });
    expect(polled.body).not.toHaveProperty('started_at');

    // Make the rerun quick, then let a fresh worker take the job.
    await job.updateData({ ...job.data, payload: { substrate_id: substrateId, parameters: { l: [1, 2, 3] } } });
    const orm2 = await createOrm(app.config.databaseUrl);
    const next = await runWorkers({ config: app.config, orm: orm2, logger: app.deps.logger });
    try {
      const finished = await waitFor(async () => {
        const current = await request('GET', `/api/v1/jobs/${jobId}`, { token: alice.accessToken });
        return current.body.state === 'completed' && current.body;
      }, 30_000);
      expect(finished).toMatchObject({ result: { result: 3 }, attempts_made: 1 });
      // Its start is the rerun's: the handed-back attempt left none behind.
      expect(Date.parse(finished.started_at)).toBeGreaterThan(handedBackAt);
    } finally {
      await next.close();
      await orm2.close();
    }
  });

  it('the API exits 0 on SIGTERM after answering the request it was serving', { timeout: 150_000 }, async () => {
    const substrateId = await createSubstrate('x - 1');
    // The kernel's pick, not a random one: a random port may be a Redis node's or another test's.
    const port = await freePort();
    const api = spawnWorker('api/main.ts', { PORT: String(port), RATE_LIMIT_MULTIPLIER: '1000' });
    const apiRequest = httpClient(`http://127.0.0.1:${port}`);
    // An API process under tsx starts in 10–30 s on this 2-core box with another test file running beside it (more on a cluster).
    await waitFor(async () => (await apiRequest('GET', '/api/v1/health')).status === 200, 90_000, 100);

    // No worker runs, so this waits the full 3 s and then answers 202.
    const inFlight = apiRequest('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: alice.accessToken,
      headers: { prefer: 'wait=3' },
      body: { parameters: { x: 1 } },
    });
    await waitFor(async () => (await app.sql(`select 1 from jobs where payload->>'substrate_id' = $1`, [substrateId])).length === 1);
    const signalledAt = Date.now();
    api.child.kill('SIGTERM');
    expect((await inFlight).status).toBe(202);
    expect(await api.exited).toBe(0);
    const exitMs = Date.now() - signalledAt;
    expect(exitMs).toBeLessThan(30_000);
    const stopped = api.logs.find((line) => line.msg === 'api stopped');
    expect(stopped).toMatchObject({ cutOff: false });
    console.info(
      `[shutdown figures] API: SIGTERM with a Prefer: wait=3 request in flight; it was answered (202), HTTP drained after ` +
        `${String(stopped?.httpMs)} ms, connections closed after ${String(stopped?.totalMs)} ms, process exited 0 ${exitMs} ms after the signal`,
    );
  });
});
