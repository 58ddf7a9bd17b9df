import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../api/app.js';
import { createLogger } from '../../lib/logger.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let server: Server;
let baseUrl: string;
const lines: Array<Record<string, unknown>> = [];
const logger = createLogger(
  'info',
  'test',
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  }),
);

/** Secrets a client may put in a URL, each of which must stay out of the logs. */
const jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzZWNyZXQtc3ViamVjdCJ9.c2VjcmV0LXNpZ25hdHVyZS12YWx1ZQ';
const apiKey = `sk_live_${'S'.repeat(43)}`;

beforeAll(async () => {
  app = await startTestApp();
  // The same dependencies, logging into `lines`.
  server = createApp({ ...app.deps, logger }).listen(0);
  await new Promise<void>((resolve) => server.once('listening', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await app?.close();
});

beforeEach(() => {
  lines.length = 0;
});

const accessLine = (status: number) => lines.find((line) => line.msg === 'request' && line.status === status);

describe('access logs', () => {
  it('redact tokens, keys, passwords and secrets in the query string, keeping the other parameters', async () => {
    const query = `access_token=${jwt}&refresh_token=rt_secret-refresh-value&key=${apiKey}&token=secret-token-value&password=hunter2-secret&client_secret=secret-client-value&limit=5`;
    expect((await fetch(`${baseUrl}/api/v1/auth/me?${query}`)).status).toBe(401);
    const line = accessLine(401);
    expect(line, JSON.stringify(lines)).toBeDefined();
    const logged = JSON.stringify(lines);
    for (const secret of [jwt, 'rt_secret-refresh-value', apiKey, 'secret-token-value', 'hunter2-secret', 'secret-client-value'])
      expect(logged).not.toContain(secret);
    expect(line!.url).toMatch(/^\/api\/v1\/auth\/me\?access_token=\[REDACTED\]&refresh_token=\[REDACTED\]&key=\[REDACTED\]/);
    expect(line!.url).toContain('&limit=5');
  });

  it('redact an API key or a JWT anywhere in the URL, whatever the parameter is called', async () => {
    expect((await fetch(`${baseUrl}/api/v1/jobs/${apiKey}?q=${jwt}`)).status).toBe(401);
    const logged = JSON.stringify(lines);
    expect(logged).not.toContain(apiKey);
    expect(logged).not.toContain(jwt);
    expect(accessLine(401)?.url).toBe('/api/v1/jobs/[REDACTED]?q=[REDACTED]');
  });
});

describe('error logs', () => {
  it('name the failed statement and its error code, not the values it carried', async () => {
    const [admin] = await app.sql<{ id: string }>(`select id from users where email = 'admin@example.test'`);
    const em = app.deps.orm.em.fork();
    const insert = `insert into tos_acceptances (id, user_id, version) values (gen_random_uuid(), ?, ?)`;
    await em.execute(insert, [admin!.id, 'secret-version-value']);
    const duplicate = await em.execute(insert, [admin!.id, 'secret-version-value']).catch((error: unknown) => error);
    expect(String(duplicate)).toContain('secret-version-value'); // what an unfiltered log would print

    logger.error({ err: duplicate }, 'request failed');
    const line = lines.find((entry) => entry.msg === 'request failed');
    expect(JSON.stringify(lines)).not.toContain('secret-version-value');
    expect(line?.err).toMatchObject({
      code: '23505',
      constraint: 'tos_acceptances_user_id_version_unique',
      message: expect.stringContaining('duplicate key value violates unique constraint'),
      statement: expect.stringMatching(/^insert into tos_acceptances \(id, user_id, version\) values \(gen_random_uuid\(\), \?, \?\)/),
    });
    expect(line?.err).not.toHaveProperty('detail');
  });

  it('leave out the value PostgreSQL quotes in a cast error', async () => {
    const failed = await app.deps.orm.em
      .fork()
      .execute('select ?::uuid as id', ['secret-cast-value'])
      .catch((error: unknown) => error);
    logger.error({ err: failed }, 'request failed');
    expect(JSON.stringify(lines)).not.toContain('secret-cast-value');
    expect(lines.find((entry) => entry.msg === 'request failed')?.err).toMatchObject({
      code: '22P02',
      message: expect.stringContaining('invalid input syntax for type uuid'),
    });
  });
});
