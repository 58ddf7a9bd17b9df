/** Attacks on the evaluation pool: slow and catastrophic expressions in big batches, submitted or scheduled. */
import { createSubstrate } from './customers.js';
import { call } from './http.js';
import { emptyOutcome, repeat, salt, tallyBatch, untilEnded, type Attack } from './attack.js';

/** The catastrophic-backtracking input of the issue: `s = "a"×30 + "b"` against `^(a|a)*$`. */
const regexExpression = 's.matches("^(a|a)*$")';
const regexInput = `${'a'.repeat(30)}b`;

/**
 * A legal expression that takes a few seconds to evaluate (about 2 s on an idle core of the development
 * machine; the time limit is 5 s): 120³ ≈ 1.7 million steps of nested comprehensions.
 */
const slowList = `[${Array.from({ length: 120 }, (_, i) => i).join(',')}]`;
export const nearLimitExpression = `${slowList}.map(a, ${slowList}.map(b, ${slowList}.filter(c, (a + b + c + int(x)) % 7 == 0).size()).size()).size() + x`;

function batchInvocations(substrateId: string, items: number, parameters: (i: number) => Record<string, unknown>) {
  return Array.from({ length: items }, (_, i) => ({ substrate_id: substrateId, parameters: parameters(i) }));
}

/** Posts a batch every `batchEverySeconds` for the whole window. */
function batchFlood(
  name: string,
  description: string,
  expression: string,
  parameters: (round: number, i: number) => Record<string, unknown>,
): Attack {
  return {
    name,
    description,
    async run(ctx) {
      const outcome = emptyOutcome();
      const substrateId = await createSubstrate(ctx.api, ctx.attacker, expression);
      const batchIds: string[] = [];
      await repeat(ctx, ctx.sizes.batchEverySeconds * 1000, async (round) => {
        const answer = await call(ctx.api, 'POST', '/batches', {
          token: ctx.attacker.key,
          body: { invocations: batchInvocations(substrateId, ctx.sizes.batchItems, (i) => parameters(round, i)) },
        });
        outcome.requests.add(answer);
        if (answer.body?.id) batchIds.push(answer.body.id as string);
      });
      for (const id of batchIds) await tallyBatch(ctx.api, ctx.attacker, id, outcome);
      outcome.leftovers.jobIds.push(...batchIds);
      outcome.notes.batches = batchIds.length;
      return outcome;
    },
  };
}

export const regexBatches = batchFlood(
  'regex-batches',
  `s.matches("^(a|a)*$"), s = "a"×30+"b": a batch every 10 s`,
  regexExpression,
  (round, i) => ({ s: regexInput, n: `${salt()}-${round}-${i}` }),
);

export const nearLimitBatches = batchFlood(
  'near-limit-batches',
  'a legal expression taking ~2 s (limit 5 s): a batch every 10 s',
  nearLimitExpression,
  (round, i) => ({ x: round * 1_000_000 + i, n: salt() }),
);

/** Copies of `s` in each item's result, and the length of `s`: ~960 KB of JSON per item, under RESULT_MAX_BYTES. */
const bigItemCopies = 800;
const bigItemStringLength = 1_200;

export const bigResultBatches = batchFlood(
  'big-result-batches',
  `[s, s, …×${bigItemCopies}] with a ${bigItemStringLength / 1000} KB s per item (~1 MB results; 10,000 items would be 10 GB): a batch every 10 s`,
  `[${Array.from({ length: bigItemCopies }, () => 's').join(', ')}]`,
  (round, i) => ({ s: `${salt()}-${round}-${i}-`.padEnd(bigItemStringLength, 'r') }),
);

export const regexSchedules: Attack = {
  name: 'regex-schedules',
  description: 'schedules (every 10 s) of regex batches: the attack repeats with no further requests',
  async run(ctx) {
    const outcome = emptyOutcome();
    const substrateId = await createSubstrate(ctx.api, ctx.attacker, regexExpression);
    for (let i = 0; i < ctx.sizes.schedules; i++) {
      const name = `noisy-${salt()}-${i}`;
      const answer = await call(ctx.api, 'POST', '/schedules', {
        token: ctx.attacker.key,
        body: {
          name,
          every_ms: ctx.sizes.batchEverySeconds * 1000,
          job: {
            type: 'batch',
            payload: { invocations: batchInvocations(substrateId, ctx.sizes.batchItems, (j) => ({ s: regexInput, n: `${i}-${j}` })) },
          },
        },
      });
      outcome.requests.add(answer);
      if (answer.status < 300) outcome.leftovers.schedules.push(name);
      if (ctx.ended()) break;
    }
    await untilEnded(ctx);
    // The runs the schedules made (the attacker is new for this attack: all its batch jobs).
    const runs = await call(ctx.api, 'GET', '/jobs?type=batch&limit=100', { token: ctx.attacker.key });
    const runIds = ((runs.body?.items ?? []) as Array<{ id: string }>).map((job) => job.id);
    for (const id of runIds) await tallyBatch(ctx.api, ctx.attacker, id, outcome);
    outcome.leftovers.jobIds.push(...runIds);
    outcome.notes.schedules = outcome.leftovers.schedules.length;
    outcome.notes.scheduled_runs = runIds.length;
    return outcome;
  },
};
