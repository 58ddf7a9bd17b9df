import { beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { errorHandler } from '../../api/problems.js';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';

/**
 * Every pooled PostgreSQL connection busy (four 10 MB substrate batches in parallel had done it): a request
 * that needs one answers 503 with Retry-After once knex gives up waiting, never 500.
 */
const suite = useTestApp({ users: 1 });
let token: string;

beforeAll(() => {
  token = (suite.users[0] as TestUser).accessToken;
});

type KnexClient = { acquireConnection(): Promise<unknown>; releaseConnection(connection: unknown): Promise<unknown> };
const knexClient = () => (suite.app.deps.orm.em.getConnection().getKnex() as unknown as { client: KnexClient }).client;

describe('database pool exhaustion', () => {
  it('answers 503 problem+json with Retry-After while every connection is held, and 200 once they are back', async () => {
    const list = () => suite.request('GET', '/api/v1/substrates', { token });
    expect((await list()).status).toBe(200);
    const client = knexClient();
    const held: unknown[] = [];
    // Take every connection the pool has (max 10): the next acquire waits, then times out.
    for (let i = 0; i < 10; i++) held.push(await client.acquireConnection());
    try {
      const response = await list();
      expectProblem(response, 503, 'unavailable');
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    } finally {
      for (const connection of held) await client.releaseConnection(connection);
    }
    expect((await list()).status).toBe(200);
  }, 30_000);
});

/** What the error middleware answers for `error` (status, Retry-After), without a server. */
function answerFor(error: unknown): { status: number; retryAfter?: string } {
  const answer: { status: number; retryAfter?: string } = { status: 0 };
  const res = {
    headersSent: false,
    setHeader: (name: string, value: string) => (name === 'Retry-After' ? (answer.retryAfter = value) : undefined),
    status: (status: number) => ((answer.status = status), res),
    type: () => res,
    send: () => res,
  };
  errorHandler(pino({ level: 'silent' }))(error, { log: undefined } as never, res as never, () => undefined);
  return answer;
}

describe('errors of a saturated or unreachable database', () => {
  it.each([
    ['pg connect timeout', new Error('timeout expired')],
    ['pg-pool connect timeout', new Error('timeout exceeded when trying to connect')],
    [
      'knex acquire timeout',
      Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError' }),
    ],
    ['too many clients', Object.assign(new Error('sorry, too many clients already'), { code: '53300' })],
    ['a wrapped cause', new Error('select failed', { cause: new Error('timeout expired') })],
  ])('answers %s with 503 and Retry-After', (_name, error) => {
    expect(answerFor(error)).toEqual({ status: 503, retryAfter: '5' });
  });

  it('still answers an ordinary bug with 500', () => {
    expect(answerFor(new TypeError('x is undefined'))).toEqual({ status: 500 });
  });
});
