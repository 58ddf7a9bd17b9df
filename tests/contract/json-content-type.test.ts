import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import { loginAdmin, type TestUser } from '../helpers/accounts.js';
import type { HttpResponse } from '../helpers/http.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

/**
 * A JSON route reads its body only when it is declared JSON. A form, text or untyped body is refused with
 * 415 naming application/json instead of being ignored (it used to run the job without its parameters).
 * Routes that take no body accept an empty one whatever its type; the admin login keeps its form and the
 * usage ingest its NDJSON.
 */
const suite = useTestApp({ users: 1 });
let token: string;
let substrateId: string;

/** Sends `body` as-is with the given content type (none when null). */
async function send(
  method: string,
  path: string,
  body: string | undefined,
  contentType: string | null,
  bearer = token,
): Promise<HttpResponse> {
  const headers: Record<string, string> = { authorization: `Bearer ${bearer}` };
  if (contentType !== null) headers['content-type'] = contentType;
  const response = await fetch(suite.app.baseUrl + path, { method, headers, body, redirect: 'manual' });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: /json/.test(response.headers.get('content-type') ?? '') && text ? JSON.parse(text) : text,
    text,
  };
}

const jobCount = async () => Number((await suite.app.sql<{ n: string }>('select count(*) as n from jobs'))[0]?.n);
const invokeBody = JSON.stringify({ parameters: { x: 5 } });

beforeAll(async () => {
  token = (suite.users[0] as TestUser).accessToken;
  substrateId = await createExpressionSubstrate(suite.request, token, 'x + 1');
});

describe('JSON routes refuse a body that is not JSON with 415', () => {
  it('refuses curl -d (a form content type) on invoke and creates no job', async () => {
    const before = await jobCount();
    const response = await send('POST', `/api/v1/substrates/${substrateId}/invoke`, invokeBody, 'application/x-www-form-urlencoded');
    expectProblem(response, 415, 'unsupported-media-type', ['header.content-type']);
    expect(response.body.detail).toContain('application/json');
    expect(await jobCount()).toBe(before);
  });

  it.each([
    ['text/plain', 'text/plain'],
    ['no content type', null],
    ['multipart', 'multipart/form-data; boundary=x'],
    ['XML', 'application/xml'],
    ['a structured +json type', 'application/vnd.api+json'],
    ['JSON merge patch', 'application/merge-patch+json'],
    ['a JSON prefix', 'application/jsonx'],
  ])('refuses %s on POST /jobs, POST /substrates and PATCH /substrates/:id', async (_name, contentType) => {
    expectProblem(
      await send('POST', '/api/v1/jobs', JSON.stringify({ type: 'invoke', payload: { substrate_id: substrateId } }), contentType),
      415,
      'unsupported-media-type',
    );
    expectProblem(
      await send('POST', '/api/v1/substrates', JSON.stringify({ expression_type: 'constant', value: 3 }), contentType),
      415,
      'unsupported-media-type',
    );
    expectProblem(
      await send('PATCH', `/api/v1/substrates/${substrateId}`, JSON.stringify({ metadata: {} }), contentType),
      415,
      'unsupported-media-type',
    );
  });

  it('accepts application/json with a charset, in any case', async () => {
    const types = [
      'application/json',
      'application/json; charset=utf-8',
      'Application/JSON;charset=UTF-8',
      'application/json ; charset="utf-8"',
    ];
    for (const [index, contentType] of types.entries()) {
      const response = await send(
        'POST',
        '/api/v1/substrates',
        JSON.stringify({ expression_type: 'constant', value: 1000 + index }),
        contentType,
      );
      expect(response.status, `${contentType}: ${response.text}`).toBe(201);
      expect(response.body.value).toBe(1000 + index);
    }
  });
});

describe('Content-Encoding', () => {
  const encoded = async (encoding: string, body: Buffer) => {
    const response = await fetch(`${suite.app.baseUrl}/api/v1/substrates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-encoding': encoding },
      body,
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown>, text: '' };
  };

  it('inflates a gzip body, and names the header when the body is not what it says or the coding is unknown', async () => {
    const created = await encoded('gzip', gzipSync(JSON.stringify({ expression_type: 'constant', value: 4242 })));
    expect(created.status).toBe(201);
    expect(created.body.value).toBe(4242);
    for (const encoding of ['gzip', 'deflate', 'br'])
      expectProblem(await encoded(encoding, Buffer.from('not compressed')), 400, 'validation', ['header.content-encoding']);
    expectProblem(await encoded('zstd', Buffer.from('{}')), 415, 'unsupported-media-type', ['header.content-encoding']);
  });
});

describe('routes without a body, and the routes that take other types', () => {
  it('accepts an empty body with any or no content type on POST /substrates/:id/divide', async () => {
    for (const contentType of [null, 'text/plain', 'application/x-www-form-urlencoded', 'application/json']) {
      const response = await send('POST', `/api/v1/substrates/${substrateId}/divide`, '', contentType);
      expect(response.status, `${contentType}: ${response.text}`).toBe(202);
    }
    expect((await send('POST', `/api/v1/substrates/${substrateId}/divide`, undefined, null)).status).toBe(202);
  });

  it('accepts an empty body on POST /schedules/:name/pause and POST /api-keys/:id/rotate', async () => {
    expectProblem(await send('POST', '/api/v1/schedules/no-such-schedule/pause', '', 'text/plain'), 404, 'not-found');
    const key = await suite.request('POST', '/api/v1/api-keys', { token, body: { name: 'ci', service_type: 'compute' } });
    expect(key.status, key.text).toBe(201);
    const rotated = await send('POST', `/api/v1/api-keys/${key.body.id}/rotate`, '', 'application/x-www-form-urlencoded');
    expect(rotated.status, rotated.text).toBe(201);
  });

  it('takes no body as {} on POST /substrates/:id/invoke and POST /api-keys/:id/rotate, but refuses JSON null there (400)', async () => {
    expect((await send('POST', `/api/v1/substrates/${substrateId}/invoke`, undefined, null)).status).toBe(202);
    expectProblem(await send('POST', `/api/v1/substrates/${substrateId}/invoke`, 'null', 'application/json'), 400, 'validation', ['body']);
    const key = await suite.request('POST', '/api/v1/api-keys', { token, body: { name: 'null-body', service_type: 'compute' } });
    expectProblem(await send('POST', `/api/v1/api-keys/${key.body.id}/rotate`, 'null', 'application/json'), 400, 'validation', ['body']);
  });

  it('keeps the admin login form and the NDJSON usage ingest', async () => {
    const login = await fetch(`${suite.app.baseUrl}/admin/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: suite.app.baseUrl },
      body: new URLSearchParams({ email: 'admin@example.test', password: 'admin-password-123' }).toString(),
    });
    expect(login.status).toBe(303);
    const adminToken = await loginAdmin(suite.request);
    const me = await suite.request('GET', '/api/v1/auth/me', { token });
    const row = {
      timestamp: new Date().toISOString(),
      customer_id: me.body.customer_id,
      service_type: 'seal',
      method: 'GET',
      status_code: 200,
      bytes_out: 10,
    };
    const ingest = await send('POST', '/api/v1/admin/usage/ingest', `${JSON.stringify(row)}\n`, 'application/x-ndjson', adminToken);
    expect(ingest.status, ingest.text).toBe(200);
    expect(ingest.body.accepted).toBe(1);
  });
});
