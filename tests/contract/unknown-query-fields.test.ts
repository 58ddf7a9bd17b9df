import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

/**
 * SPEC §5: unknown fields are a 400. The list routes always refused an unknown query field (a misspelt filter
 * must not quietly list everything); the routes that read one resource ignored it. Each is answered alike now.
 */
const suite = useTestApp({ users: 1, workers: false });
const paths: string[] = [];

beforeAll(async () => {
  const token = suite.users[0]!.accessToken;
  const call = (method: string, path: string, body?: unknown) => suite.request(method, `/api/v1${path}`, { token, body });
  const source = await createExpressionSubstrate(suite.request, token, 'x + 1');
  const target = await createExpressionSubstrate(suite.request, token, 'x + 2');
  const edge = await call('POST', '/relationships', { source_id: source, target_id: target, type: 'REFERENCE' });
  const batch = await call('POST', '/batches', { invocations: [{ substrate_id: source, parameters: { x: 1 } }] });
  const schedule = await call('POST', '/schedules', {
    name: 'query-fields',
    every_ms: 60_000,
    job: { type: 'invoke', payload: { substrate_id: source } },
  });
  const webhook = await call('POST', '/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['job.completed'] });
  for (const created of [edge, batch, schedule, webhook]) expect(created.status, created.text).toBeLessThan(300);
  paths.push(
    '/auth/me',
    '/billing/balance',
    '/webhooks/secret',
    `/webhooks/${webhook.body.id}`,
    `/batches/${batch.body.id}`,
    `/relationships/${edge.body.id}`,
    '/schedules/query-fields',
    `/substrates/${source}`,
  );
});

describe('a route that reads one resource', () => {
  it('answers without a query string, and refuses an unknown query field with 400 naming it', async () => {
    const token = suite.users[0]!.accessToken;
    for (const path of paths) {
      const plain = await suite.request('GET', `/api/v1${path}`, { token });
      expect(plain.status, `${path}: ${plain.text}`).toBe(200);
      expectProblem(await suite.request('GET', `/api/v1${path}?bogus=1`, { token }), 400, 'validation', ['query.bogus']);
    }
  });
});
