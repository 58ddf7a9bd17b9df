/** Attacks on the API process and on storage: huge bodies, password hashing, huge results, a flood of reads. */
import { createSubstrate } from './customers.js';
import { call, type Answer } from './http.js';
import { emptyOutcome, pause, repeat, salt, tallyJobs, type Attack } from './attack.js';

/** `POST /substrates/batch` bodies of ~10.5 KB per substrate: a 2 KB expression and 60 metadata keys. */
function substrateBatchBody(items: number, tag: string): string {
  const metadata = (i: number) =>
    Object.fromEntries(Array.from({ length: 60 }, (_, k) => [`key_${k}`, `${tag}-${i}-${k}-`.padEnd(110, 'm')]));
  const expression = (i: number) => `[${Array.from({ length: 400 }, (_, k) => (k * 7 + i) % 1000).join(', ')}].size() + x`;
  return JSON.stringify({
    substrates: Array.from({ length: items }, (_, i) => ({
      expression_type: 'expression',
      expression: expression(i) + ` + ${tag.length}`,
      metadata: metadata(i),
    })),
  });
}

/** Where a round's own tag goes in the body built once (`substrateBatches`). */
const tagMark = 'TAGTAGTAG';

export const substrateBatches: Attack = {
  name: 'substrate-batches',
  description: 'POST /substrates/batch, 1,000 × (2 KB expression + 60 metadata keys) ≈ 10 MB, 4 at once',
  async run(ctx) {
    const outcome = emptyOutcome();
    let bytes = 0;
    // Built once, each round's tags put in by replacement: building four 10 MB bodies per round held this
    // thread for seconds, and undici's keep-alive timers with it, so it reused sockets the API had already
    // closed (EPIPE, counted as an unclear answer).
    const template = substrateBatchBody(ctx.sizes.substrateBatchItems, tagMark);
    await repeat(ctx, 0, async (round) => {
      const bodies = Array.from({ length: ctx.sizes.substrateBatchesInParallel }, (_, k) =>
        template.replaceAll(tagMark, `${salt()}${round}${k}`),
      );
      bytes = bodies[0]?.length ?? 0;
      const answers = await Promise.all(
        bodies.map((rawBody) => call(ctx.api, 'POST', '/substrates/batch', { token: ctx.attacker.key, rawBody })),
      );
      for (const answer of answers) outcome.requests.add(answer);
    });
    outcome.notes.body_mb = Math.round(bytes / 1e5) / 10;
    return outcome;
  },
};

export const failedLogins: Attack = {
  name: 'failed-logins',
  description: 'bursts of 20 failed logins from one address (unknown emails), every 3 s',
  async run(ctx) {
    const outcome = emptyOutcome();
    await repeat(ctx, 3000, async () => {
      const answers = await Promise.all(
        Array.from({ length: ctx.sizes.loginBurst }, () =>
          call(ctx.api, 'POST', '/auth/login', { body: { email: `nobody-${salt()}@example.test`, password: 'not the password' } }),
        ),
      );
      for (const answer of answers) outcome.requests.add(answer);
    });
    return outcome;
  },
};

export const bigResults: Attack = {
  name: 'big-results',
  description: '[s, s, …×300] with a 16 KB s: 4.8 MB results, 3 at once, repeated',
  async run(ctx) {
    const outcome = emptyOutcome();
    const expression = `[${Array.from({ length: ctx.sizes.resultCopies }, () => 's').join(', ')}]`;
    const substrateId = await createSubstrate(ctx.api, ctx.attacker, expression);
    await repeat(ctx, 0, async () => {
      const answers: Answer[] = await Promise.all(
        Array.from({ length: ctx.sizes.resultCallsInParallel }, () =>
          call(ctx.api, 'POST', `/substrates/${substrateId}/invoke`, {
            token: ctx.attacker.key,
            body: { parameters: { s: salt().padEnd(ctx.sizes.resultStringLength, 'x') } },
            headers: { prefer: 'wait=30' },
          }),
        ),
      );
      for (const answer of answers) {
        outcome.requests.add(answer);
        if (answer.body?.id) outcome.leftovers.jobIds.push(answer.body.id as string);
      }
      if (answers.every((answer) => answer.status === 429)) await pause(1000);
    });
    await tallyJobs(ctx.api, ctx.attacker, outcome.leftovers.jobIds, outcome);
    outcome.notes.result_mb = Math.round((ctx.sizes.resultCopies * ctx.sizes.resultStringLength) / 1e5) / 10;
    return outcome;
  },
};

/** Invocations of `substrateId` whose parameters are ~16 KB each, ~`bytes` of JSON in all. */
function bigBatchPayload(substrateId: string, bytes: number) {
  const parameters = () => ({ s: salt().padEnd(16_000, 'p') });
  return {
    invocations: Array.from({ length: Math.floor(bytes / 16_100) }, () => ({ substrate_id: substrateId, parameters: parameters() })),
  };
}

export const bigPayloads: Attack = {
  name: 'big-payloads',
  description: '40 batches of ~1 MB bodies, delayed an hour, 2 at a time: 40 MB of payloads parked in Redis',
  async run(ctx) {
    const outcome = emptyOutcome();
    const substrateId = await createSubstrate(ctx.api, ctx.attacker, 'size(s)');
    // 40 of the starter tier's 100 writes a minute, so the clean-up's 40 cancels still fit in the same minute.
    await repeat(ctx, 0, async () => {
      if (outcome.leftovers.jobIds.length >= 40) {
        await pause(500);
        return;
      }
      const answers: Answer[] = await Promise.all(
        Array.from({ length: 2 }, () =>
          call(ctx.api, 'POST', '/jobs', {
            token: ctx.attacker.key,
            body: { type: 'batch', payload: bigBatchPayload(substrateId, 1_000_000), delay_ms: 3_600_000 },
          }),
        ),
      );
      for (const answer of answers) {
        outcome.requests.add(answer);
        if (answer.body?.id) outcome.leftovers.jobIds.push(answer.body.id as string);
      }
      if (answers.every((answer) => answer.status === 429)) await pause(1000);
    });
    outcome.notes.parked_mb = outcome.leftovers.jobIds.length;
    await tallyJobs(ctx.api, ctx.attacker, outcome.leftovers.jobIds, outcome);
    return outcome;
  },
};

export const enterpriseReads: Attack = {
  name: 'enterprise-reads',
  description: 'an enterprise customer: waves of 3,000 concurrent GET /jobs',
  attackerTier: 'enterprise',
  async run(ctx) {
    const outcome = emptyOutcome();
    let waves = 0;
    await repeat(ctx, 0, async () => {
      const answers = await Promise.all(
        Array.from({ length: ctx.sizes.concurrentReads }, () =>
          call(ctx.api, 'GET', '/jobs?limit=100', { token: ctx.enterprise.key, timeoutMs: 60_000 }),
        ),
      );
      for (const answer of answers) outcome.requests.add(answer);
      waves++;
    });
    outcome.notes.waves = waves;
    return outcome;
  },
};
