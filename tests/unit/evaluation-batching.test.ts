import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declaredTasks, jobRegistry } from '../../jobs/registry.js';
import { evaluateTask } from '../../jobs/invoke/invoke.job.js';
import { createTaskPool, taskRunner } from '../../workers/pools.js';

// Two threads, as on the machines we run on (PISCINA_THREADS defaults to the core count): a runaway holds one.
const tasks = declaredTasks(jobRegistry);
const pool = createTaskPool(tasks, { threads: 2, taskTimeoutMs: 1500 });
const runTask = taskRunner(pool, 1500, tasks);
const evaluate = (expression: string, parameters: Record<string, unknown> = {}, signal?: AbortSignal) =>
  runTask(evaluateTask, { expression, parameters }, signal);
const thousand = Array.from({ length: 1000 }, (_, i) => i);

// A thread's first task loads the task module (through tsx here), which on a busy machine can take most of
// the 1.5 s limit; the tests measure warm threads.
beforeAll(async () => {
  await Promise.all([evaluate('1'), evaluate('2')]);
});

afterAll(async () => {
  await pool.destroy();
});

describe('evaluations requested together', () => {
  it('go to a thread as one task, each with its own result', async () => {
    const before = pool.completed;
    const values = await Promise.all(Array.from({ length: 20 }, (_, n) => evaluate('n * 2', { n })));
    expect(values.map((output) => output.value)).toEqual(Array.from({ length: 20 }, (_, n) => n * 2));
    expect(pool.completed - before).toBe(1);
  });

  it('go to a thread without waiting for an event-loop turn when the pool is quiet (one job at a time)', async () => {
    // Quiet: nothing running, and the last evaluation went alone (after a gathered batch the next waits a turn).
    await evaluate('1');
    // The next job arrives later (its own I/O), once the pool's bookkeeping of the last one is done.
    await new Promise((resolve) => setImmediate(resolve));
    const run = pool.run;
    let turnPassed = false;
    let sentBeforeTheTurn: boolean | null = null;
    // Records when the call reaches Piscina, and lets it through.
    pool.run = ((...args: Parameters<typeof run>) => {
      sentBeforeTheTurn ??= !turnPassed;
      return run.apply(pool, args);
    }) as typeof run;
    // Queued before the call: a call gathered for a turn would reach the pool after it ran.
    setImmediate(() => {
      turnPassed = true;
    });
    try {
      expect((await evaluate('n + 1', { n: 1 })).value).toBe(2);
    } finally {
      pool.run = run;
    }
    expect(sentBeforeTheTurn).toBe(true);
  });

  it('fail one by one: a throwing expression fails alone', async () => {
    const outcomes = await Promise.allSettled([evaluate('1 + 1'), evaluate('1 / 0'), evaluate('2 + 2')]);
    expect(outcomes[0]).toMatchObject({ status: 'fulfilled', value: { value: 2 } });
    expect(outcomes[1]).toMatchObject({
      status: 'rejected',
      reason: { message: expect.stringMatching(/^evaluation failed: .*division by zero/) },
    });
    expect(outcomes[2]).toMatchObject({ status: 'fulfilled', value: { value: 4 } });
  });

  it('let a runaway expression fail at the time limit by itself while the others succeed', async () => {
    const runaway = evaluate('l.map(a, l.map(b, l.map(c, a * b * c).size())).size()', { l: thousand });
    const good = Array.from({ length: 5 }, (_, n) => evaluate('n + 100', { n }));
    await expect(runaway).rejects.toThrow(/time limit/);
    expect((await Promise.all(good)).map((output) => output.value)).toEqual([100, 101, 102, 103, 104]);
  }, 15_000);

  it('answer a job cancelled while its batch runs at once, not when the batch ends', async () => {
    const controller = new AbortController();
    const runaway = evaluate('l.map(a, l.map(b, l.map(c, a * b * c).size())).size()', { l: thousand });
    const started = performance.now();
    const cancelled = evaluate('n', { n: 1 }, controller.signal);
    setTimeout(() => controller.abort(), 100);
    await expect(cancelled).rejects.toThrow('cancelled');
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(runaway).rejects.toThrow(/time limit/);
  }, 15_000);

  it('answer a cancelled job at once, without waiting for its batch', async () => {
    const controller = new AbortController();
    const cancelled = evaluate('n', { n: 1 }, controller.signal);
    controller.abort();
    await expect(cancelled).rejects.toThrow('cancelled');
  });
});
