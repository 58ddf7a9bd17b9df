import { afterAll, describe, expect, it } from 'vitest';
import { PasswordHasher } from '../../api/auth/password-hasher.js';
import { ProblemError } from '../../api/problems.js';

/** bcrypt runs on the hasher's own thread; a full queue refuses at once with 503 rather than waiting. */
const hasher = new PasswordHasher({ threads: 1, maxQueue: 1 });

afterAll(async () => {
  await hasher.close();
});

describe('PasswordHasher', () => {
  it('hashes on its thread, and the hash matches the password and no other', async () => {
    const hash = await hasher.hash('correct horse battery', 4);
    expect(hash).toMatch(/^\$2[aby]\$04\$/);
    expect(await hasher.compare('correct horse battery', hash)).toBe(true);
    expect(await hasher.compare('correct horse battery!', hash)).toBe(false);
  });

  it('refuses a hash past its queue with a 503 problem carrying Retry-After, and finishes the ones it took', async () => {
    // One thread busy, one hash queued: the rest are refused without waiting.
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => hasher.hash('password', 8)));
    const done = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const refused = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason] : []));
    expect(done.length).toBeGreaterThanOrEqual(2);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const reason of refused) {
      expect(reason).toBeInstanceOf(ProblemError);
      expect((reason as ProblemError).status).toBe(503);
      expect((reason as ProblemError).extra.headers).toMatchObject({ 'Retry-After': expect.stringMatching(/^\d+$/) });
    }
    // Once the queue drains, it hashes again.
    expect(await hasher.hash('password', 4)).toMatch(/^\$2/);
  });
});
