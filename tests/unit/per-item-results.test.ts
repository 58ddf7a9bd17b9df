import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { declaredTasks, jobRegistry } from '../../jobs/registry.js';
import { evaluateManyTask } from '../../jobs/invoke/invoke.job.js';
import type { EvaluateInput } from '../../jobs/invoke/evaluate.task.js';
import { createTaskPool, taskRunner } from '../../workers/pools.js';

/**
 * A customer's expressions decide how big their results are. A batch's chunk is evaluated in one call of
 * the per-item task; the results it answers are held in the worker until stored, so the runner bounds them:
 * an item over the result limit never leaves its thread, and a call answers part of its items once their
 * results reach the answer budget (the caller stores them and asks again for the rest).
 */
const tasks = declaredTasks(jobRegistry);
const pool = createTaskPool(tasks, { threads: 2, taskTimeoutMs: 5000 });
const resultMaxBytes = 100_000;
const answerMaxBytes = 1_000_000;
const runTask = taskRunner(pool, 5000, tasks, { resultMaxBytes, answerMaxBytes });
const owner = { customerId: 'big-results', workMs: 0 };
const evaluateMany = (inputs: EvaluateInput[]) => runTask(evaluateManyTask, inputs, undefined, owner);

beforeAll(async () => {
  await evaluateMany([{ expression: '1', parameters: {} }]);
});

afterAll(async () => {
  await pool.destroy();
});

describe('results of a per-item task', () => {
  it('tells a result of gigabytes of JSON over the limit without encoding it, the others beside it answered', async () => {
    const sixteen = Array.from({ length: 16 }, () => 'a').join(' + ');
    // 500 copies of one 655,360-character string: 327,680,000 characters of JSON, never laid out on the thread.
    const copies = `[s]${`.map(a, ${sixteen})`.repeat(4)}.map(a, [${Array.from({ length: 500 }, () => 'a').join(', ')}])[0]`;
    const outcomes = await evaluateMany([
      { expression: copies, parameters: { s: 'abcdefghij' } },
      { expression: 'n * 2', parameters: { n: 21 } },
    ]);
    expect(outcomes[0]).toEqual({
      error: expect.stringMatching(
        /^result_too_large: the result is at least \d+ bytes of JSON, over the RESULT_MAX_BYTES limit of 100000 bytes$/,
      ),
    });
    expect(outcomes[1]).toEqual({ value: 42 });
  });

  it('fails an item whose result is over the limit with result_too_large, the others beside it answered', async () => {
    const outcomes = await evaluateMany([
      { expression: 's', parameters: { s: 'a'.repeat(50_000) } },
      { expression: 's + s', parameters: { s: 'b'.repeat(60_000) } },
      { expression: 'n * 2', parameters: { n: 21 } },
    ]);
    expect(outcomes[0]).toEqual({ value: 'a'.repeat(50_000) });
    expect(outcomes[1]).toEqual({
      error: 'result_too_large: the result is 120002 bytes of JSON, over the RESULT_MAX_BYTES limit of 100000 bytes',
    });
    expect(outcomes[2]).toEqual({ value: 42 });
  });

  it('answers the items whose results fill the answer budget, then the rest when asked again', async () => {
    // 40 results of 50,002 bytes of JSON each: 2 MB, twice the budget.
    const inputs = Array.from({ length: 40 }, (_, n) => ({ expression: 's + string(n)', parameters: { s: 'c'.repeat(49_999), n } }));
    const first = await evaluateMany(inputs);
    const answered = first.flatMap((outcome, i) => (outcome === undefined ? [] : [i]));
    // The items answered are the first ones, and stop at the one that reached the budget (the 20th).
    expect(answered).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const rest = inputs.slice(answered.length);
    const second = await evaluateMany(rest);
    expect(second.every((outcome) => outcome !== undefined)).toBe(true);
    expect([...first.slice(0, 20), ...second]).toEqual(inputs.map((_, n) => ({ value: 'c'.repeat(49_999) + String(n) })));
  });

  it('answers every item of small results in one call', async () => {
    const inputs = Array.from({ length: 500 }, (_, n) => ({ expression: 'n * n', parameters: { n } }));
    expect(await evaluateMany(inputs)).toEqual(inputs.map((_, n) => ({ value: n * n })));
  });
});
