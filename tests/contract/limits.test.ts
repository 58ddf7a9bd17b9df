import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

/**
 * SPEC §5: malformed input (wrong type, missing or unknown field) is a 400; well-formed input that asks for
 * more than the service allows (a limit exceeded) is a 422 naming the field. Each route's over-limit case
 * sits next to its malformed one.
 */
const suite = useTestApp({ users: 1 });
let token: string;
let substrateId: string;
let otherId: string;

const keys = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, i]));
const post = (path: string, body: unknown) => suite.request('POST', `/api/v1${path}`, { token, body });

beforeAll(async () => {
  token = (suite.users[0] as TestUser).accessToken;
  substrateId = await createExpressionSubstrate(suite.request, token, 'x + 1');
  otherId = await createExpressionSubstrate(suite.request, token, 'x + 2');
});

describe('a limit exceeded answers 422 naming the field; malformed input stays 400', () => {
  it('POST /batches: 10,001 invocations vs invocations that are not a list', async () => {
    const invocations = Array.from({ length: 10_001 }, () => ({ substrate_id: substrateId }));
    expectProblem(await post('/batches', { invocations }), 422, 'unprocessable', ['body.invocations']);
    expectProblem(await post('/batches', { invocations: 'all of them' }), 400, 'validation', ['body.invocations']);
  });

  it('POST /jobs: a batch payload of 10,001 invocations, 26 attempts and a delay past a year vs wrong types', async () => {
    const invocations = Array.from({ length: 10_001 }, () => ({ substrate_id: substrateId }));
    expectProblem(await post('/jobs', { type: 'batch', payload: { invocations } }), 422, 'unprocessable', ['body.payload.invocations']);
    expectProblem(await post('/jobs', { type: 'batch', payload: { invocations: [{ substrate_id: 7 }] } }), 400, 'validation', [
      'body.payload.invocations.0.substrate_id',
    ]);
    const invoke = { type: 'invoke', payload: { substrate_id: substrateId } };
    expectProblem(await post('/jobs', { ...invoke, attempts: 26 }), 422, 'unprocessable', ['body.attempts']);
    expectProblem(await post('/jobs', { ...invoke, attempts: 'many' }), 400, 'validation', ['body.attempts']);
    expectProblem(await post('/jobs', { ...invoke, delay_ms: 366 * 24 * 3600 * 1000 }), 422, 'unprocessable', ['body.delay_ms']);
    expectProblem(await post('/jobs', { ...invoke, delay_ms: -1 }), 400, 'validation', ['body.delay_ms']);
    // A whole number past 2^53 is as well formed as one just past the limit; a priority's range is its meaning (400).
    expectProblem(await post('/jobs', { ...invoke, delay_ms: 1e20 }), 422, 'unprocessable', ['body.delay_ms']);
    expectProblem(await post('/jobs', { ...invoke, attempts: 1e300 }), 422, 'unprocessable', ['body.attempts']);
    expectProblem(await post('/jobs', { ...invoke, priority: 1e20 }), 400, 'validation', ['body.priority']);
    expectProblem(await post('/jobs/bulk', { jobs: [{ ...invoke, delay_ms: 1e20 }] }), 422, 'unprocessable', ['jobs[0].delay_ms']);
    expectProblem(await post('/relationships/traverse', { start_substrate_id: substrateId, max_depth: 1e308 }), 422, 'unprocessable', [
      'body.max_depth',
    ]);
  });

  it('POST /substrates/batch: 1,001 substrates vs an empty list', async () => {
    const substrates = Array.from({ length: 1001 }, (_, i) => ({ expression_type: 'constant', value: i }));
    expectProblem(await post('/substrates/batch', { substrates }), 422, 'unprocessable', ['body.substrates']);
    expectProblem(await post('/substrates/batch', { substrates: {} }), 400, 'validation', ['body.substrates']);
  });

  it('POST /relationships/traverse: max_depth 11 and six relationship types vs a depth that is not a number', async () => {
    expectProblem(await post('/relationships/traverse', { start_substrate_id: substrateId, max_depth: 11 }), 422, 'unprocessable', [
      'body.max_depth',
    ]);
    const six = ['DEPENDENCY', 'COMPOSITION', 'INHERITANCE', 'REFERENCE', 'CUSTOM', 'CUSTOM'];
    expectProblem(
      await post('/relationships/traverse', { start_substrate_id: substrateId, relationship_types: six }),
      422,
      'unprocessable',
      ['body.relationship_types'],
    );
    expectProblem(await post('/relationships/traverse', { start_substrate_id: substrateId, max_depth: 'deep' }), 400, 'validation', [
      'body.max_depth',
    ]);
    expectProblem(await post('/relationships/traverse', { start_substrate_id: substrateId, max_depth: 0 }), 400, 'validation', [
      'body.max_depth',
    ]);
  });

  it('POST /substrates/:id/invoke and the operators: 101 parameters or over 16 KiB of them vs parameters that are not an object', async () => {
    expectProblem(await post(`/substrates/${substrateId}/invoke`, { parameters: keys(101) }), 422, 'unprocessable', ['body.parameters']);
    expectProblem(await post(`/substrates/${substrateId}/invoke`, { parameters: { x: 'y'.repeat(17_000) } }), 422, 'unprocessable', [
      'body.parameters',
    ]);
    expectProblem(await post(`/substrates/${substrateId}/add`, { value: 1, parameters: keys(101) }), 422, 'unprocessable', [
      'body.parameters',
    ]);
    expectProblem(await post(`/substrates/${substrateId}/invoke`, { parameters: [1, 2] }), 400, 'validation', ['body.parameters']);
  });

  it('POST /substrates/multiply: 10,001 dimension values vs values that are not numbers', async () => {
    expectProblem(await post('/substrates/multiply', { dimension_values: Array.from({ length: 10_001 }, () => 1) }), 422, 'unprocessable', [
      'body.dimension_values',
    ]);
    expectProblem(await post('/substrates/multiply', { dimension_values: ['two'] }), 400, 'validation', ['body.dimension_values.0']);
  });

  it('substrate and relationship metadata: 65 keys or over 8 KiB vs metadata that is not an object', async () => {
    expectProblem(await post('/substrates', { expression_type: 'constant', value: 1, metadata: keys(65) }), 422, 'unprocessable', [
      'body.metadata',
    ]);
    expectProblem(
      await post('/substrates', { expression_type: 'constant', value: 1, metadata: { blob: 'z'.repeat(9000) } }),
      422,
      'unprocessable',
      ['body.metadata'],
    );
    expectProblem(await post('/substrates', { expression_type: 'constant', value: 1, metadata: 'tags' }), 400, 'validation', [
      'body.metadata',
    ]);
    const patch = await suite.request('PATCH', `/api/v1/substrates/${substrateId}`, { token, body: { metadata: keys(65) } });
    expectProblem(patch, 422, 'unprocessable', ['body.metadata']);
    const edge = { source_id: substrateId, target_id: otherId, type: 'REFERENCE' };
    expectProblem(await post('/relationships', { ...edge, metadata: { blob: 'z'.repeat(9000) } }), 422, 'unprocessable', ['body.metadata']);
    expectProblem(await post('/relationships', { ...edge, metadata: ['tags'] }), 400, 'validation', ['body.metadata']);
  });

  it('PATCH /billing/limits: a monthly limit over the ceiling vs a fraction of a cent', async () => {
    const patch = (body: unknown) => suite.request('PATCH', '/api/v1/billing/limits', { token, body });
    expectProblem(await patch({ max_monthly_usd_cents: 100_000_000_001 }), 422, 'unprocessable', ['body.max_monthly_usd_cents']);
    expectProblem(await patch({ max_monthly_usd_cents: 1.5 }), 400, 'validation', ['body.max_monthly_usd_cents']);
  });

  it('POST /schedules: the 101st schedule names body.name; a schedule whose batch payload is over the limit is a 422 too', async () => {
    const me = await suite.request('GET', '/api/v1/auth/me', { token });
    await suite.app.sql(
      `insert into schedules (id, customer_id, name, cron, tz, job_type, payload, paused)
       select gen_random_uuid(), $1, 'bulk-' || n, '0 0 1 1 *', 'UTC', 'invoke', $2::jsonb, true from generate_series(1, 100) n`,
      [me.body.customer_id, JSON.stringify({ substrate_id: substrateId })],
    );
    const job = { type: 'invoke', payload: { substrate_id: substrateId } };
    expectProblem(await post('/schedules', { name: 'one-too-many', cron: '0 0 1 1 *', job }), 422, 'unprocessable', ['body.name']);
    const invocations = Array.from({ length: 10_001 }, () => ({ substrate_id: substrateId }));
    const batch = await post('/schedules', { name: 'bulk-1', cron: '0 0 1 1 *', job: { type: 'batch', payload: { invocations } } });
    expectProblem(batch, 422, 'unprocessable', ['body.job.payload.invocations']);
  });

  it('answers 400 when a body both breaks a limit and is malformed: the malformed part has to be fixed first', async () => {
    const response = await post('/relationships/traverse', { start_substrate_id: 'not-an-id', max_depth: 11 });
    expectProblem(response, 400, 'validation', ['body.start_substrate_id', 'body.max_depth']);
  });

  it('keeps ?limit= over 100 a 400, as SPEC §5 says of list pages', async () => {
    expectProblem(await suite.request('GET', '/api/v1/substrates?limit=101', { token }), 400, 'validation', ['query.limit']);
  });

  it('takes ?limit= in decimal digits only: hex, exponents, signs, spaces and a trailing point are 400', async () => {
    expect((await suite.request('GET', '/api/v1/substrates?limit=100', { token })).status).toBe(200);
    expect((await suite.request('GET', '/api/v1/jobs?limit=007', { token })).status).toBe(200);
    for (const limit of ['0x10', '0b11', '1e1', '%2B5', '5.', '100.0', '%201', '', '1,2'])
      for (const path of ['/api/v1/substrates', '/api/v1/jobs', '/api/v1/webhooks'])
        expectProblem(await suite.request('GET', `${path}?limit=${limit}`, { token }), 400, 'validation', ['query.limit']);
  });
});
