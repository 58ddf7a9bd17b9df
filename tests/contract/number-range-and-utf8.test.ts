import { beforeAll, describe, expect, it } from 'vitest';
import { expectProblem } from '../auth/expect-problem.js';
import type { TestUser } from '../helpers/accounts.js';
import { useTestApp } from '../helpers/suite.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

/**
 * Input that JSON.parse or the UTF-8 decoder would silently change is refused with a 400 naming it, rather
 * than stored changed: a number past the double range (`1e999` parses as Infinity, which is stored and
 * answered as null) and bytes that are not UTF-8 (decoded as U+FFFD).
 */
const suite = useTestApp({ workers: true, users: 1 });
let token: string;
let substrateId: string;
const outOfRange = 'is a number outside the range of a double (JSON numbers must be finite)';
const postText = (path: string, rawBody: string | Uint8Array, headers: Record<string, string> = {}) =>
  suite.request('POST', `/api/v1${path}`, { token, rawBody, headers });

beforeAll(async () => {
  token = (suite.users[0] as TestUser).accessToken;
  substrateId = await createExpressionSubstrate(suite.request, token, 'x * y');
});

describe('numbers past the double range', () => {
  it('invoke: 1e999 in parameters answers 400 naming it; the largest double is evaluated', async () => {
    const refused = await postText(`/substrates/${substrateId}/invoke`, '{"parameters":{"x":1e999,"y":1}}', { prefer: 'wait=5' });
    expectProblem(refused, 400, 'validation', ['body.parameters.x']);
    expect(refused.body.errors).toEqual([{ field: 'body.parameters.x', message: outOfRange }]);

    const accepted = await postText(`/substrates/${substrateId}/invoke`, '{"parameters":{"x":1.7976931348623157e308,"y":1}}', {
      prefer: 'wait=5',
    });
    expect(accepted.status).toBe(200);
    expect(accepted.body.result.result).toBe(Number.MAX_VALUE);
  });

  it('POST /jobs, POST /jobs/bulk and POST /batches: -1e999 anywhere in a payload answers 400 and stores nothing', async () => {
    const before = await suite.request('GET', '/api/v1/jobs', { token });
    const payload = `{"substrate_id":"${substrateId}","parameters":{"x":-1e999}}`;
    expectProblem(await postText('/jobs', `{"type":"invoke","payload":${payload}}`), 400, 'validation', ['body.payload.parameters.x']);
    expectProblem(
      await postText(
        '/jobs/bulk',
        `{"jobs":[{"type":"invoke","payload":{"substrate_id":"${substrateId}"}},{"type":"invoke","payload":${payload}}]}`,
      ),
      400,
      'validation',
      ['jobs[1].payload.parameters.x'],
    );
    expectProblem(await postText('/batches', `{"invocations":[${payload}]}`), 400, 'validation', ['body.invocations.0.parameters.x']);
    const after = await suite.request('GET', '/api/v1/jobs', { token });
    expect(after.body.items).toEqual(before.body.items);
  });

  it('substrate metadata: 1e999 answers 400 on create, batch create and PATCH; 1e308 is kept as sent', async () => {
    expectProblem(
      await postText('/substrates', '{"expression_type":"expression","expression":"x - 77","metadata":{"big":1e999}}'),
      400,
      'validation',
      ['body.metadata.big'],
    );
    expectProblem(
      await postText('/substrates/batch', '{"substrates":[{"expression_type":"constant","value":3,"metadata":{"big":1e999}}]}'),
      400,
      'validation',
    );
    const patched = await suite.request('PATCH', `/api/v1/substrates/${substrateId}`, { token, rawBody: '{"metadata":{"big":1e999}}' });
    expectProblem(patched, 400, 'validation', ['body.metadata.big']);

    const kept = await suite.request('PATCH', `/api/v1/substrates/${substrateId}`, { token, rawBody: '{"metadata":{"big":1e308}}' });
    expect(kept.status).toBe(200);
    expect(kept.body.metadata).toEqual({ big: 1e308 });
  });
});

describe('bodies that are not the UTF-8 they are declared to be', () => {
  const jobBody = (text: Buffer) =>
    Buffer.concat([
      Buffer.from(`{"type":"invoke","payload":{"substrate_id":"${substrateId}","parameters":{"x":"`),
      text,
      Buffer.from('","y":1}}}'),
    ]);

  it('answers 400 naming the body for bytes that are not UTF-8, and accepts the same text in UTF-8', async () => {
    for (const bad of [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
      const refused = await postText('/jobs', jobBody(Buffer.from(bad)));
      expectProblem(refused, 400, 'validation', ['body']);
      expect(refused.body.errors).toEqual([{ field: 'body', message: 'invalid UTF-8' }]);
    }
    expect((await postText('/jobs', jobBody(Buffer.from('Zoë 名前 😀')))).status).toBe(202);
  });

  it('refuses them on the 16 MiB route read off the event loop too', async () => {
    const body = Buffer.concat([
      Buffer.from('{"substrates":[{"expression_type":"constant","value":"'),
      Buffer.from([0xff]),
      Buffer.from('"}]}'),
    ]);
    const refused = await postText('/substrates/batch', body);
    expectProblem(refused, 400, 'validation', ['body']);
  });

  it('leaves other declared charsets alone: a UTF-16 body is decoded as before', async () => {
    const text = `{"type":"invoke","payload":{"substrate_id":"${substrateId}","parameters":{"x":"é","y":1}}}`;
    const accepted = await postText('/jobs', Buffer.from(text, 'utf16le'), { 'content-type': 'application/json; charset=utf-16le' });
    expect(accepted.status).toBe(202);
  });
});
