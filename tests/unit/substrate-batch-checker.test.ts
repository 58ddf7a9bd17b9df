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

/** A body as the route hands it over: its bytes and charset. */
const sent = (text: string, charset = 'utf-8') => ({ bytes: Buffer.from(text, charset === 'utf-16le' ? 'utf16le' : 'utf8'), charset });

const batch = sent(JSON.stringify({ substrates: [{ expression_type: 'constant', value: 1 }] }));

describe('SubstrateBatchChecker', () => {
  it("refuses a customer's batch past its queue with 503 + Retry-After, an anonymous check taking none of its places", async () => {
    const anonymous = checker.anonymousCheck();
    expect(anonymous).not.toBeNull();
    expect(checker.anonymousCheck()).toBeNull();
    const syntax = anonymous!.isJson(sent('{"substrates": ['));
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
    const malformed = await checker.check(randomUUID(), sent('{"substrates": [')).catch((error: unknown) => error);
    expect(malformed).toBeInstanceOf(ProblemError);
    expect(malformed).toMatchObject({ type: 'validation', extra: { errors: [{ field: 'body', message: 'malformed JSON' }] } });
    const empty = await checker.check(randomUUID(), sent('')).catch((error: unknown) => error);
    expect(empty).toMatchObject({ type: 'validation', extra: { errors: [expect.objectContaining({ field: 'body.substrates' })] } });
    const released = checker.anonymousCheck();
    released!.release();
    released!.release();
    expect(checker.anonymousUnderWay).toBe(0);
  });

  it('decodes a body in its charset in the thread, a byte order mark dropped, as body-parser did', async () => {
    const body = sent('\uFEFF{"substrates":[{"expression_type":"constant","value":2,"metadata":{"name":"\u00e9t\u00e9"}}]}', 'utf-16le');
    const checked = await checker.check(randomUUID(), body);
    expect(checked.ids).toHaveLength(1);
    expect(JSON.parse(checked.rows)).toEqual([expect.objectContaining({ value: 2, metadata: { name: '\u00e9t\u00e9' } })]);
  });

  it("moves a large body's memory to the thread instead of copying it; a small pooled one is copied", async () => {
    const large = { bytes: Buffer.alloc(256 * 1024, ' '), charset: 'utf-8' };
    large.bytes.write(JSON.stringify({ substrates: [{ expression_type: 'constant', value: 3 }] }));
    const small = sent(JSON.stringify({ substrates: [{ expression_type: 'constant', value: 4 }] }));
    await Promise.all([checker.check(randomUUID(), large), checker.check(randomUUID(), small)]);
    expect(large.bytes.byteLength).toBe(0);
    expect(small.bytes.byteLength).toBeGreaterThan(0);
  });
});
