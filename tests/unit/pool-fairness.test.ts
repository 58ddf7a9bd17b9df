import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskOwner } from '../../jobs/context.js';
import { analyzeTask } from '../../jobs/divide/divide.job.js';
import { evaluateManyTask, evaluateTask } from '../../jobs/invoke/invoke.job.js';
import { declaredTasks, jobRegistry } from '../../jobs/registry.js';
import { createTaskPool, taskRunner } from '../../workers/pools.js';
import { waitFor } from '../helpers/http.js';

// The real pool: two threads (as on the machines we run on) and a time limit long enough that a thread's
// first task, which loads the task module through tsx, fits in it on a busy machine.
const limitMs = 2500;
const tasks = declaredTasks(jobRegistry);
const pool = createTaskPool(tasks, { threads: 2, taskTimeoutMs: limitMs });
const runTask = taskRunner(pool, limitMs, tasks);

const owner = (customerId: string): TaskOwner => ({ customerId, workMs: 0 });
const evaluate = (who: TaskOwner, expression: string, parameters: Record<string, unknown> = {}) =>
  runTask(evaluateTask, { expression, parameters }, undefined, who);

const thousand = Array.from({ length: 1000 }, (_, i) => i);
/** Runs until the time limit stops it. */
const runaway = { expression: 'l.map(a, l.map(b, l.map(c, a * b * c).size())).size()', parameters: { l: thousand } };
/** Catastrophic backtracking for a backtracking engine: 2⁴⁰ paths. */
const regexAttack = { expression: 's.matches("^(a|a)*$")', parameters: { s: 'a'.repeat(40) + 'b' } };
/** A legal expression that keeps a thread busy for a while (a few hundred ms here), well within the limit. */
const slow = { expression: 'l.map(a, l.map(b, a * b).size()).size()', parameters: { l: thousand.slice(0, 300) } };
/** How long an evaluation runs on a warm thread (the second of two runs), as the pool measures it. */
async function timeOf(input: { expression: string; parameters: Record<string, unknown> }): Promise<TaskOwner> {
  await runTask(evaluateTask, input, undefined, owner('probe'));
  const probe = owner('probe');
  await runTask(evaluateTask, input, undefined, probe);
  return probe;
}
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Threads that have loaded the task modules: the first two once warmed up, then each replacement. */
const loadedThreads = new Set<number>();
pool.on('workerCreate', (worker: { id: number }) => loadedThreads.add(worker.id));
/** Until the pool has both its threads loaded again (an earlier test's stopped threads replaced). */
const settled = () =>
  waitFor(async () => pool.threads.length === 2 && pool.threads.every((thread) => loadedThreads.has(thread.threadId)), 20_000);

beforeAll(async () => {
  await Promise.all([evaluate(owner('warm-up'), '1'), evaluate(owner('warm-up'), '2')]);
  for (const thread of pool.threads) loadedThreads.add(thread.threadId);
});

afterAll(async () => {
  await pool.destroy();
});

describe('catastrophic regular expressions', () => {
  it('answer in linear time on the pool threads, and ordinary matches still match', async () => {
    const attacker = owner('attacker');
    await expect(runTask(evaluateTask, regexAttack, undefined, attacker)).resolves.toEqual({ value: false });
    await expect(evaluate(attacker, 's.matches("^(a|a)*$")', { s: 'aaaa' })).resolves.toEqual({ value: true });
    await expect(evaluate(attacker, 's.matches("^[a-z]+@[a-z]+\\\\.com$")', { s: 'someone@example.com' })).resolves.toEqual({
      value: true,
    });
    // Well under the limit, where a backtracking engine would take hours.
    expect(attacker.workMs).toBeLessThan(limitMs);
  });
});

describe('time limits measure the task, not the queue', () => {
  it('let a task that waited longer than the limit succeed when its own run is short, charging only its run', async () => {
    const customer = owner('patient');
    const blocking = owner('patient'); // the same customer's other jobs
    // Four runaways, each sent alone (calls made in one event-loop turn would go as one task), hold both
    // threads for twice the limit; the short task queues behind them in its customer's lane.
    const blockers: Promise<unknown>[] = [];
    for (let n = 0; n < 4; n++) {
      blockers.push(runTask(evaluateTask, runaway, undefined, blocking).catch((error: Error) => error.message));
      await nextTurn();
    }
    const queuedAt = performance.now();
    const short = runTask(analyzeTask, { expression: 'x * y' }, undefined, customer);
    await expect(short).resolves.toMatchObject({ variables: ['x', 'y'] });
    const waited = performance.now() - queuedAt;
    expect(await Promise.all(blockers)).toEqual(Array(4).fill(`evaluation exceeded the ${limitMs} ms time limit`));
    expect(waited).toBeGreaterThan(limitMs);
    expect(customer.workMs).toBeGreaterThan(0);
    expect(customer.workMs).toBeLessThan(limitMs);
    // Runaways are charged their thread time too: up to the limit each.
    expect(blocking.workMs).toBeGreaterThanOrEqual(4 * limitMs);
  }, 60_000);
});

describe('batched evaluation', () => {
  it('times each item on its own: one runaway item fails alone with a named reason, its batch-mates succeed', async () => {
    const batch = owner('batcher');
    const good = (n: number) => ({ expression: 'n * 2', parameters: { n } });
    const inputs = [good(1), good(2), runaway, regexAttack, good(3), { expression: '1 / 0', parameters: {} }, good(4)];
    const outcomes = await runTask(evaluateManyTask, inputs, undefined, batch);
    expect(outcomes).toEqual([
      { value: 2 },
      { value: 4 },
      { error: `evaluation exceeded the ${limitMs} ms time limit` },
      { value: false },
      { value: 6 },
      { error: expect.stringMatching(/^evaluation failed: .*division by zero/) },
      { value: 8 },
    ]);
    expect(batch.workMs).toBeGreaterThanOrEqual(limitMs);
  }, 30_000);

  it('gives items that take longer together than the limit each their own limit', async () => {
    // Each item takes a fair share of the limit; together they take several limits in one task.
    const probe = await timeOf(slow);
    const count = Math.ceil((3 * limitMs) / Math.max(probe.workMs, 50));
    const outcomes = await runTask(evaluateManyTask, Array(count).fill(slow), undefined, owner('long-batch'));
    expect(outcomes.filter((outcome) => outcome === undefined || 'error' in outcome)).toEqual([]);
  }, 60_000);
});

describe('customers share the pool', () => {
  it("keeps a victim's trivial evaluations succeeding while another customer floods the pool with runaways and regex attacks", async () => {
    const attacker = owner('attacker');
    const flood = [
      ...Array.from({ length: 4 }, () => runTask(evaluateTask, runaway, undefined, attacker).catch((error: Error) => error.message)),
      ...Array.from({ length: 40 }, () => runTask(evaluateTask, regexAttack, undefined, attacker).catch((error: Error) => error.message)),
      runTask(evaluateManyTask, [runaway, ...Array(200).fill(regexAttack), runaway], undefined, attacker),
    ];
    const victim = owner('victim');
    const answers: unknown[] = [];
    for (let n = 0; n < 6; n++) answers.push((await evaluate(victim, 'x * y', { x: n, y: 7 })).value);
    expect(answers).toEqual([0, 7, 14, 21, 28, 35]);
    const attacked = await Promise.all(flood);
    expect(attacked.slice(0, 4)).toEqual(Array(4).fill(`evaluation exceeded the ${limitMs} ms time limit`));
    expect(attacked.slice(4, 44)).toEqual(Array(40).fill({ value: false }));
    // Its own work, not the victim's, paid for its runaways.
    expect(victim.workMs).toBeLessThan(limitMs);
  }, 120_000);

  it("keeps a thread free for a victim's quick evaluations while another customer's long evaluations wait", async () => {
    const attacker = owner('long-runner');
    // Runaways hold a thread for the whole limit; after one the pool knows this customer's tasks run long.
    await expect(runTask(evaluateTask, runaway, undefined, attacker)).rejects.toThrow('time limit');
    // The stopped thread's replacement loads the task modules (through tsx here, about a second) before
    // it takes work: until then the pool has one thread and nothing to keep.
    await settled();
    const victim = owner('quick-victim');
    await evaluate(victim, '1 + 1');
    const stop = new AbortController();
    const flood: Promise<unknown>[] = [];
    for (let n = 0; n < 6; n++) {
      flood.push(runTask(evaluateTask, runaway, stop.signal, attacker).catch((error: Error) => error.message));
      await nextTurn(); // each sent alone
    }
    const waits: number[] = [];
    for (let n = 0; n < 5; n++) {
      const askedAt = performance.now();
      expect(await evaluate(victim, 'x * y', { x: n, y: 2 })).toEqual({ value: n * 2 });
      waits.push(performance.now() - askedAt);
      await nextTurn();
    }
    stop.abort();
    const flooded = await Promise.all(flood);
    // Counted in tasks, the runaways would hold both threads and each of these would wait for one of them
    // to end (up to the limit); the kept thread answers them at once.
    expect(Math.max(...waits)).toBeLessThan(limitMs / 4);
    expect(flooded).toEqual(Array(6).fill('cancelled'));
  }, 60_000);

  it("keeps the last ready thread for a victim while another customer's runaway stops a thread and its replacement loads", async () => {
    await settled();
    const attacker = owner('thread-stopper');
    const victim = owner('steady-victim');
    await evaluate(victim, '1 + 1');
    const stop = new AbortController();
    // Runaways one after another: each holds a thread for the whole limit, is stopped, and the next one waits.
    const flood: Promise<unknown>[] = [];
    for (let n = 0; n < 4; n++) {
      flood.push(runTask(evaluateTask, runaway, stop.signal, attacker).catch((error: Error) => error.message));
      await nextTurn(); // each sent alone
    }
    // The victim calls on through the first runaway's stop and its thread's replacement (about a second
    // under tsx, while the pool has one thread loaded).
    const replaced = new Promise<void>((resolve) => pool.once('workerCreate', () => resolve()));
    let replacedYet = false;
    void replaced.then(() => (replacedYet = true));
    const waits: number[] = [];
    for (let n = 0; !replacedYet || n < 5; n++) {
      const askedAt = performance.now();
      expect(await evaluate(victim, 'x * y', { x: n, y: 3 })).toEqual({ value: n * 3 });
      waits.push(performance.now() - askedAt);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    stop.abort();
    await Promise.all(flood);
    // Had the runaway's stop freed its lane, its next runaway would take the one ready thread, and the victim
    // would wait for the replacement to load.
    expect(Math.max(...waits)).toBeLessThan(limitMs / 4);
  }, 60_000);

  it('holds no place of the pool for a task that failed with its own error, whatever words its message quotes', async () => {
    await settled();
    const attacker = owner('memory-words');
    // A missing key is quoted in the error: words of a thread stopped at its heap limit, from the customer.
    const quoting = { expression: '{"a": 0}[k]', parameters: { k: 'heap limit ERR_WORKER_OUT_OF_MEMORY out of memory' } };
    for (let n = 0; n < 2; n++) {
      // Each sent alone (evaluations of one turn go together as one task of many).
      await expect(runTask(evaluateTask, quoting, undefined, attacker)).rejects.toThrow(/^evaluation failed: .*heap limit/);
    }
    const victim = owner('after-memory-words');
    const askedAt = performance.now();
    expect(await evaluate(victim, '1 + 1')).toEqual({ value: 2 });
    // Taken for stopped threads, the two failures would hold both places until a replacement that never comes.
    expect(performance.now() - askedAt).toBeLessThan(limitMs / 4);
  }, 30_000);

  it("serves waiting tasks by thread time: one customer's quick tasks run before another's slow backlog", async () => {
    const onePool = createTaskPool(tasks, { threads: 1, taskTimeoutMs: limitMs });
    const run = taskRunner(onePool, limitMs, tasks);
    try {
      // A new thread loads the task modules through tsx during its first tasks, which may take the limit.
      await run(analyzeTask, { expression: 'warm' }).catch(() => run(analyzeTask, { expression: 'warm' }));
      await run(evaluateTask, { expression: '1', parameters: {} });
      const order: string[] = [];
      const busy = run(evaluateTask, slow, undefined, owner('z')).catch(() => null);
      await nextTurn(); // evaluations are sent on the next turn (gathered); from then on it holds the thread
      // Three slow evaluations, each sent alone (calls in one turn would go as one task), then six quick analyses.
      // Heavier than `slow` (~5.4× its work): quick analyses preempted on a loaded machine must not outweigh it
      // (at ~2.8× a CI run under the parallel suite measured the six at 38.7 ms against 100 ms for the three).
      const heavy = { ...slow, parameters: { l: thousand.slice(0, 700) } };
      const slowOwner = owner('slow');
      const queued: Promise<unknown>[] = [];
      for (const label of ['s1', 's2', 's3']) {
        queued.push(run(evaluateTask, heavy, undefined, slowOwner).then(() => order.push(label)));
        await nextTurn();
      }
      const quickOwner = owner('quick');
      for (const label of ['q1', 'q2', 'q3', 'q4', 'q5', 'q6'])
        queued.push(run(analyzeTask, { expression: label }, undefined, quickOwner).then(() => order.push(label)));
      await Promise.all([busy, ...queued]);
      // Counted in tasks it would be s1 q1 s2 q2 s3 q3…; counted in thread time, s1's run pays for all six.
      expect(quickOwner.workMs).toBeLessThan(slowOwner.workMs / 3);
      expect(order).toEqual(['s1', 'q1', 'q2', 'q3', 'q4', 'q5', 'q6', 's2', 's3']);
    } finally {
      await onePool.destroy();
    }
  }, 30_000);
});
