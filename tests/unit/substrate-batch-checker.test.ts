import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ProblemError } from '../../api/problems.js';
import { SubstrateBatchChecker } from '../../api/substrate-batch/substrate-batch-checker.js';

/**
 * The batch checker's thread takes customers' batches (a queue of `maxQueue`, then 503) and, beside them,
 * at most `anonymousChecks` syntax checks of bodies sent without valid credentials.
 */
const checker = new SubstrateBatchChecker({ maxQueue: 1, anonymousChecks: 1 });

afterAll(async () => {
  await checker.close();
});

const batch = JSON.stringify({ substrates: [{ expression_type: 'constant', value: 1 }] });

describe('SubstrateBatchChecker', () => {
  it("refuses a customer's batch past its queue with 503 + Retry-After, an anonymous check taking none of its places", async () => {
    const anonymous = checker.anonymousCheck();
    expect(anonymous).not.toBeNull();
    expect(checker.anonymousCheck()).toBeNull();
    const syntax = anonymous!.isJson('{"substrates": [');
    // One running, one waiting (maxQueue 1): the third customer is refused at once.
    const outcomes = await Promise.allSettled([randomUUID(), randomUUID(), randomUUID()].map((customer) => checker.check(customer, batch)));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    const refusal = (outcomes[2] as PromiseRejectedResult).reason as ProblemError;
    expect(refusal).toBeInstanceOf(ProblemError);
    expect(refusal.status).toBe(503);
    expect(refusal.extra.headers).toMatchObject({ 'Retry-After': '5' });
    expect(await syntax).toBe(false);
    expect(checker.anonymousUnderWay).toBe(0);
    expect(checker.counts).toEqual({ batchChecks: 2, anonymousChecks: 1, anonymousTurnedAway: 1, anonymousPeak: 1 });
  });

  it("parses a customer's body once: malformed JSON is the 400 naming body, an empty text the JSON parser's {}", async () => {
    const malformed = await checker.check(randomUUID(), '{"substrates": [').catch((error: unknown) => error);
    expect(malformed).toBeInstanceOf(ProblemError);
    expect(malformed).toMatchObject({ type: 'validation', extra: { errors: [{ field: 'body', message: 'malformed JSON' }] } });
    const empty = await checker.check(randomUUID(), '').catch((error: unknown) => error);
    expect(empty).toMatchObject({ type: 'validation', extra: { errors: [expect.objectContaining({ field: 'body.substrates' })] } });
    const released = checker.anonymousCheck();
    released!.release();
    released!.release();
    expect(checker.anonymousUnderWay).toBe(0);
  });
});
