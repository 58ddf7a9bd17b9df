import { z } from 'zod';
import { loginBody } from '../routes/accounts.routes.js';
import { documentRoute, ex, json, jsonBody, noContent, timestamp, type RouteDocs } from './document-route.js';

const role = z.enum(['user', 'admin']);

const csrfHeaderParam = z.object({
  'x-chrysalis-csrf': z
    .string()
    .min(1)
    .describe('Any non-empty value, e.g. `1`: proof the request comes from a page, not a cross-site form'),
});

export const consoleSessionSchema = z
  .object({
    id: z.uuid().describe('The user'),
    email: z.string(),
    customer_id: z.uuid(),
    role,
    expires_at: timestamp.describe('When the session ends (8 hours from sign-in; not extended by use)'),
  })
  .meta({
    id: 'ConsoleSession',
    example: { id: ex.userId, email: 'ada@example.com', customer_id: ex.customerId, role: 'user', expires_at: '2026-12-04T01:30:00.000Z' },
  });

/** POST and DELETE /auth/session: the console's cookie sign-in (console-session.routes.ts). */
export const consoleSessionDocs: RouteDocs = (registry) => {
  const tag = 'Accounts';
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'post',
    path: '/auth/session',
    summary: 'Sign in to the console: email and password for a session cookie',
    description: [
      'For the browser console. Checks the email and password as POST /auth/login does, with the same limits (per client IP, counted together with POST /auth/login,',
      'and per account: after 10 failed logins in 15 minutes the account answers 429 with `Retry-After`).',
      'Instead of tokens it sets the cookie `chrysalis_session`: an opaque random id (the session lives in Redis for 8 hours), `HttpOnly`, `SameSite=Strict`,',
      '`Path=/api/v1`, and `Secure` in production or over HTTPS. Every authenticated route then accepts the cookie in place of a bearer token',
      '(a request with an `Authorization` header is judged by that alone); a request the cookie authenticates that is not GET, HEAD or OPTIONS must send',
      '`X-Chrysalis-CSRF` and must not come from another origin (`Origin`, `Sec-Fetch-Site`), else 403. This route asks the same of its caller.',
    ].join(' '),
    request: {
      headers: csrfHeaderParam,
      body: jsonBody(loginBody, { email: 'ada@example.com', password: 'correct horse battery staple' }),
    },
    responses: {
      201: json(consoleSessionSchema, 'Signed in; the answer sets the `chrysalis_session` cookie', {
        'Set-Cookie': {
          description: 'The session cookie',
          schema: {
            type: 'string',
            example:
              'chrysalis_session=Qm9vdHN0cmFwU2Vzc2lvbklkRXhhbXBsZTAxMjM0NTY3; Max-Age=28800; Path=/api/v1; HttpOnly; SameSite=Strict',
          },
        },
      }),
    },
    problems: [401, 403, 429, 503],
  });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'delete',
    path: '/auth/session',
    summary: 'Sign out of the console: the session ends server-side and its cookie is cleared',
    description:
      'Deletes the session the `chrysalis_session` cookie names (if any): the same cookie answers 401 afterwards. Needs `X-Chrysalis-CSRF`, like every state-changing cookie request.',
    request: { headers: csrfHeaderParam },
    responses: { 204: noContent },
    problems: [403],
  });
};
