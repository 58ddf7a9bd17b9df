import { afterEach, describe, expect, it } from 'vitest';
import type { JobDefinition } from '../../jobs/define-job.js';
import { getJobDefinition, jobRegistry, type JobRegistry } from '../../jobs/registry.js';
import { createOrm, type Orm } from '../../db/orm.js';
import { submitJobsBulk } from '../../queue/submit-jobs-bulk.js';
import { runWorkers, type RunningWorkers } from '../../workers/run-workers.js';
import { registerUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp | undefined;
let workers: RunningWorkers | undefined;
let orm: Orm | undefined;

afterEach(async () => {
  await workers?.close();
  await orm?.close();
  await app?.close();
  [app, workers, orm] = [undefined, undefined, undefined];
});

/** C's expression: ~n² comparisons over `xs`. A's is four of them: four times C's worker time. */
const unit = 'xs.map(a, xs.filter(b, b < a).size()).size()';
const cExpression = `${unit} + x`;
const aExpression = `${[unit, unit, unit, unit].join(' + ')} + x`;
const xs = Array.from({ length: 300 }, (_, i) => i);

interface Finished {
  id: string;
  workMs: number;
}

/** The production registry, its invoke type with one more hook: what each finished invoke measured on a pool thread. */
function recordingRegistry(finished: Finished[]): JobRegistry {
  const invoke = getJobDefinition('invoke')!;
  const recorded: JobDefinition = {
    ...invoke,
    hooks: [
      ...(invoke.hooks ?? []),
      { name: 'test-record-work', finished: (outcome, id) => void finished.push({ id, workMs: outcome.workMs }) },
    ],
  };
  return new Map([...jobRegistry].map(([name, definition]) => [name, name === 'invoke' ? recorded : definition]));
}

/**
 * A (pro) and C (starter) are both backlogged with invokes, A's expression ~4× the cost of C's; the workers
 * start after both submitted (A first). Returns A's pool-thread time over C's while both still had work.
 */
async function workerTimeRatio(env: Record<string, string>): Promise<number> {
  // One shard: each shard is fair on its own, and over 16 (a cluster's default) these small backlogs gave A 1.6 times
  // C's worker time, not 4 — a known limit (README, fair sharing), not what this test measures.
  // Jobs held one by one: bundled, these small backlogs would be 3 and 8 lane entries (charged alike: fair-bundles.test.ts).
  app = await startTestApp({
    SWEEPER_INTERVAL_MS: '3600000',
    FAIR_SHARING: 'true',
    WORKER_CONCURRENCY: '4',
    QUEUE_SHARDS: '1',
    JOB_BUNDLE_SIZE: '1',
    ...env,
  });
  const request = httpClient(app.baseUrl);
  const customers: Record<'A' | 'C', { id: string; substrate: string }> = {} as never;
  for (const [name, tier, expression] of [
    ['A', 'pro', aExpression],
    ['C', 'starter', cExpression],
  ] as const) {
    const user = await registerUser(request);
    const id = (await request('GET', '/api/v1/auth/me', { token: user.accessToken })).body.customer_id as string;
    await app.sql(`update service_instances set tier = $2 where customer_id = $1`, [id, tier]);
    customers[name] = { id, substrate: await createExpressionSubstrate(request, user.accessToken, expression) };
  }

  const deps = app.deps;
  const owner = new Map<string, 'A' | 'C'>();
  const backlog = { A: 120, C: 400 };
  for (const [name, tier] of [
    ['A', 'pro'],
    ['C', 'starter'],
  ] as const) {
    const ids = await submitJobsBulk(
      { em: deps.orm.em, queues: deps.queues, fair: deps.fair, logger: deps.logger, cache: deps.cache },
      customers[name].id,
      getJobDefinition('invoke')!,
      Array.from({ length: backlog[name] }, (_, x) => ({ substrate_id: customers[name].substrate, parameters: { xs, x } })),
      deps.fair?.weightOf(tier) ?? 1,
    );
    for (const id of ids) owner.set(id, name);
  }

  const finished: Finished[] = [];
  orm = await createOrm(app.config.databaseUrl);
  workers = await runWorkers({ config: app.config, orm, logger: deps.logger, registry: recordingRegistry(finished) });
  const done = (name: 'A' | 'C') => finished.filter((job) => owner.get(job.id) === name).length;
  for (let waited = 0; done('A') < backlog.A - 20 && done('C') < backlog.C - 20; waited++) {
    if (waited > 3000) throw new Error(`only ${finished.length} jobs finished`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // The window: past the first 20 finished (released before either was charged), up to when one customer
  // has 20 left (the in-flight tail, its lane empty): both are backlogged throughout.
  const seen = { A: 0, C: 0 };
  const end = finished.findIndex((job) => ++seen[owner.get(job.id)!] === backlog[owner.get(job.id)!] - 20);
  const work = { A: 0, C: 0 };
  for (const job of finished.slice(20, end)) work[owner.get(job.id)!] += job.workMs;
  console.log(`fair-weights ${env.FAIR_WEIGHTS}: worker ms A ${Math.round(work.A)}, C ${Math.round(work.C)}, jobs ${end - 20}`);
  return work.A / work.C;
}

describe('fair sharing by tier weight, measured as worker time through real workers', () => {
  it("gives A (pro, 4) four times C's (starter, 1) worker time, though each of A's jobs costs 4× C's", async () => {
    const ratio = await workerTimeRatio({ FAIR_WEIGHTS: 'starter=1,pro=4,enterprise=16' });
    expect(ratio).toBeGreaterThan(4 * 0.8);
    expect(ratio).toBeLessThan(4 * 1.2);
  }, 300_000);

  it('and equal worker time when the weights are equal (the ratio follows the weights, not the job costs)', async () => {
    const ratio = await workerTimeRatio({ FAIR_WEIGHTS: 'starter=1,pro=1,enterprise=1' });
    expect(ratio).toBeGreaterThan(0.8);
    expect(ratio).toBeLessThan(1.2);
  }, 300_000);
});
