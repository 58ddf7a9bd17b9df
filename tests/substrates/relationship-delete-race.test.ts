import { randomInt } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import type { HttpResponse } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * `POST /relationships` racing `DELETE /substrates/:id` on one of its ends: the create's check that both
 * substrates exist and its insert were two statements, so a substrate deleted between them failed the insert's
 * foreign key (23503), answered 500. A create racing a delete answers 201, 200 or 404, never 5xx, and leaves
 * no edge to a substrate that is gone.
 */
const suite = useTestApp({ users: 1 });
let alice: TestUser;

beforeAll(() => {
  alice = suite.users[0] as TestUser;
});

const types = ['DEPENDENCY', 'COMPOSITION', 'INHERITANCE', 'REFERENCE', 'CUSTOM', 'DEPENDENCY'];

async function constant(): Promise<string> {
  const created = await suite.request('POST', '/api/v1/substrates', {
    token: alice.accessToken,
    body: { expression_type: 'constant', value: randomInt(1, 2 ** 47) },
  });
  expect(created.status, created.text).toBe(201);
  return created.body.substrate_id as string;
}

const relate = (source: string, target: string, type: string) =>
  suite.request('POST', '/api/v1/relationships', { token: alice.accessToken, body: { source_id: source, target_id: target, type } });

describe('creating relationships while a substrate is deleted', () => {
  it(
    'answers 201, 200 or 404 (naming the gone substrate), never 5xx, and leaves no edge to a gone substrate',
    { timeout: 60_000 },
    async () => {
      const statuses: number[] = [];
      for (let round = 0; round < 12; round++) {
        const [source, target] = [await constant(), await constant()];
        // Alternate which end goes, and whether the delete is sent with the creates or a moment after.
        const gone = round % 2 === 0 ? source : target;
        const creates = types.map((type) => relate(source, target, type));
        if (round % 3 !== 0) await new Promise((resolve) => setTimeout(resolve, round % 3));
        const deleted = await suite.request('DELETE', `/api/v1/substrates/${gone}`, { token: alice.accessToken });
        expect(deleted.status, deleted.text).toBe(204);
        const answers: HttpResponse[] = await Promise.all(creates);
        for (const answer of answers) {
          statuses.push(answer.status);
          expect([200, 201, 404], answer.text).toContain(answer.status);
          if (answer.status === 404) expectProblem(answer, 404, 'not-found', [gone === source ? 'body.source_id' : 'body.target_id']);
        }
        // Once the delete has answered, no edge of its substrate is left (and creating one is refused).
        const [left] = await suite.app.sql<{ n: string }>(
          'select count(*) as n from relationships where source_id = $1 or target_id = $1',
          [gone],
        );
        expect(left?.n).toBe('0');
        expectProblem(await relate(source, target, 'CUSTOM'), 404, 'not-found', [gone === source ? 'body.source_id' : 'body.target_id']);
      }
      const orphans = await suite.app.sql(
        `select r.id from relationships r
        where not exists (select 1 from substrates s where s.id = r.source_id and s.customer_id = r.customer_id)
           or not exists (select 1 from substrates s where s.id = r.target_id and s.customer_id = r.customer_id)`,
      );
      expect(orphans).toEqual([]);
      // The rounds raced for real: some creates came before the delete and some after.
      expect(statuses.some((status) => status === 201)).toBe(true);
      expect(statuses.some((status) => status === 404)).toBe(true);
    },
  );
});
