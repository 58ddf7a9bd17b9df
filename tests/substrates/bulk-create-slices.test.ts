import { beforeAll, describe, expect, it } from 'vitest';
import { forEachInSlices } from '../../api/slices.js';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * POST /substrates/batch checks its items a slice at a time, yielding to the event loop between slices, so
 * a 10 MB batch (1,000 expressions × 60 metadata keys) no longer holds every other request behind it.
 */
const suite = useTestApp({ users: 1 });
let token: string;

beforeAll(() => {
  token = (suite.users[0] as TestUser).accessToken;
});

/** A ~10 MB batch: 1,000 distinct ~2.6 KB expressions, each with 60 metadata keys (~7.8 KB). */
function bigBatch(tag: string) {
  const expression = Array.from({ length: 150 }, (_, i) => `(x${i} * ${i} + y)`).join(' + ');
  const metadata = Object.fromEntries(Array.from({ length: 60 }, (_, k) => [`key_${k}_${'m'.repeat(20)}`, 'v'.repeat(100)]));
  return Array.from({ length: 1000 }, (_, i) => ({
    expression_type: 'expression',
    expression: `${expression} + ${i} + ${tag.length}`,
    metadata,
  }));
}

const post = (substrates: unknown[]) => suite.request('POST', '/api/v1/substrates/batch', { token, body: { substrates } });

describe('forEachInSlices', () => {
  it('lets other callbacks run between slices and still visits every item in order', async () => {
    const seen: string[] = [];
    const other = setImmediate(() => seen.push('other'));
    await forEachInSlices([0, 1, 2], (item, index) => seen.push(`${item}@${index}`), 0);
    clearImmediate(other);
    expect(seen.filter((entry) => entry !== 'other')).toEqual(['0@0', '1@1', '2@2']);
    expect(seen.indexOf('other')).toBeGreaterThan(0);
    expect(seen.indexOf('other')).toBeLessThan(3);
  });
});

describe('POST /substrates/batch in slices', () => {
  it('creates four 10 MB batches sent in parallel: all 201, no 5xx', { timeout: 120_000 }, async () => {
    const answers = await Promise.all(['a', 'bb', 'ccc', 'dddd'].map((tag) => post(bigBatch(tag))));
    for (const answer of answers) {
      expect(answer.status, answer.text.slice(0, 300)).toBe(201);
      expect(answer.body.items).toHaveLength(1000);
    }
    expect(answers[0]!.body.items[999].metadata.key_59_mmmmmmmmmmmmmmmmmmmm).toBe('v'.repeat(100));
  });

  it('names the item whose expression does not parse, deep in a 10 MB batch, and creates none', { timeout: 60_000 }, async () => {
    const substrates: Array<Record<string, unknown>> = bigBatch('broken');
    substrates[777] = { expression_type: 'expression', expression: 'x * (' };
    const response = await post(substrates);
    expectProblem(response, 422, 'unprocessable', ['body.substrates.777.expression']);
    expect(response.body.errors).toHaveLength(1);
  });

  it('answers malformed items with 400 naming each, limits alone with 422, as the whole-body schema did', async () => {
    const malformed = await post([
      { expression_type: 'constant', value: 1 },
      { expression_type: 'expression' },
      { expression_type: 'constant', value: 2, name: 'x' },
    ]);
    expectProblem(malformed, 400, 'validation', ['body.substrates.1.expression', 'body.substrates.2.name']);
    expect(malformed.body.errors.find((error: { field: string }) => error.field === 'body.substrates.2.name').message).toMatch(
      /metadata\.name/,
    );
    const tooManyKeys = Object.fromEntries(Array.from({ length: 65 }, (_, k) => [`k${k}`, k]));
    const limited = await post([{ expression_type: 'constant', value: 3, metadata: tooManyKeys }]);
    expectProblem(limited, 422, 'unprocessable', ['body.substrates.0.metadata']);
  });

  it('refuses an unstorable value in an item with 400 naming it, as the input guard does for other routes', async () => {
    const response = await post([
      { expression_type: 'constant', value: 4 },
      { expression_type: 'constant', value: 5, metadata: { note: 'a\u0000b' } },
    ]);
    expectProblem(response, 400, 'validation', ['body.substrates.1.metadata.note']);
  });
});
