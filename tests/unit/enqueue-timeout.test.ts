import { describe, expect, it } from 'vitest';
import { withinEnqueueTimeout } from '../../queue/enqueue-timeout.js';

describe('waiting for an enqueue at most the enqueue timeout', () => {
  it('answers true when Redis takes the job, false (telling why) when it refuses or never answers', async () => {
    const reasons: string[] = [];
    const record = (error: unknown) => reasons.push(String(error));
    expect(await withinEnqueueTimeout(Promise.resolve('added'), record, 50)).toBe(true);
    expect(reasons).toEqual([]);

    expect(await withinEnqueueTimeout(Promise.reject(new Error('READONLY')), record, 50)).toBe(false);
    const never = new Promise(() => undefined);
    expect(await withinEnqueueTimeout(never, record, 50)).toBe(false);
    expect(reasons).toEqual(['Error: READONLY', 'Error: Redis did not take the job within 50 ms']);
  });

  it('leaves no unhandled rejection behind when the enqueue fails after the timeout', async () => {
    let fail!: (error: Error) => void;
    const late = new Promise((_, reject) => (fail = reject));
    expect(await withinEnqueueTimeout(late, () => undefined, 10)).toBe(false);
    fail(new Error('connection lost'));
    await new Promise((resolve) => setTimeout(resolve, 10));
  });
});
