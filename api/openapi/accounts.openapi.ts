import { z } from 'zod';
import {
  apiKeyIdParams,
  createApiKeyBody,
  listApiKeysQuery,
  loginBody,
  refreshTokenBody,
  registerBody,
  rotateApiKeyBody,
  tosAcceptBody,
} from '../routes/accounts.routes.js';
import { documentRoute, ex, exampleOf, json, jsonBody, noContent, pageOf, timestamp, type RouteDocs } from './document-route.js';

/** Said where keys are made, so nobody takes a seal key calling the compute API for a hole (issue 13). */
const keyServiceRule =
  'The service this key belongs to: `compute` (this API) or a service of the edge proxy, such as `seal`. Every call made with the key counts against that service, whatever the route: ' +
  'it is recorded and billed as that service, rate-limited by that service’s tier, and refused with 402 while that service is suspended or disabled. ' +
  'A `seal` key calling the compute API is therefore billed, limited and suspended as seal — a key belongs to one service, and the edge proxy’s traffic is billed to that service.';

const createApiKeyDocBody = createApiKeyBody.extend({ service_type: createApiKeyBody.shape.service_type.describe(keyServiceRule) });

const role = z.enum(['user', 'admin']);

export const tokensSchema = z
  .object({
    access_token: z.string().describe('HS256 JWT, valid 1 h'),
    refresh_token: z.string().describe('Opaque; rotated by POST /auth/refresh'),
    token_type: z.literal('bearer'),
    expires_in: z.int().describe('Seconds the access token is valid'),
  })
  .meta({
    id: 'Tokens',
    example: {
      access_token: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkyZjFjMCJ9.c2lnbmF0dXJl',
      refresh_token: 'rt_8Jv2kQ0xZt4mN7pW3cY6bR1sL9dF5gH',
      token_type: 'bearer',
      expires_in: 3600,
    },
  });

export const userSchema = z
  .object({ id: z.uuid(), email: z.string(), customer_id: z.uuid(), role, created_at: timestamp })
  .meta({ id: 'User', example: { id: ex.userId, email: 'ada@example.com', customer_id: ex.customerId, role: 'user', created_at: ex.at } });

export const meSchema = z
  .object({
    id: z.uuid().nullable().describe('Null when called with an API key'),
    email: z.string().nullable(),
    role,
    customer_id: z.uuid(),
    service_type: z.string(),
    tos_version_current: z.string(),
    api_key_id: z.uuid().nullable(),
    created_at: timestamp.optional(),
    tos_version_accepted: z.string().nullable(),
    tos_current: z.boolean().nullable(),
  })
  .meta({
    id: 'Me',
    example: {
      id: ex.userId,
      email: 'ada@example.com',
      role: 'user',
      customer_id: ex.customerId,
      service_type: 'compute',
      tos_version_current: '1.0.0',
      api_key_id: null,
      created_at: ex.at,
      tos_version_accepted: '1.0.0',
      tos_current: true,
    },
  });

export const apiKeySchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    service_type: z.string(),
    prefix: z.string().describe('The first characters of the key, to recognise it'),
    expires_at: timestamp.nullable(),
    revoked_at: timestamp.nullable(),
    created_at: timestamp,
  })
  .meta({
    id: 'ApiKey',
    example: {
      id: ex.apiKeyId,
      name: 'ci',
      service_type: 'compute',
      prefix: 'sk_live_4f9a',
      expires_at: null,
      revoked_at: null,
      created_at: ex.at,
    },
  });

export const newApiKeySchema = apiKeySchema
  .omit({ revoked_at: true })
  .extend({ key: z.string().describe('`sk_live_…`, shown only in this answer'), rotated_from: z.uuid().optional() })
  .meta({
    id: 'NewApiKey',
    example: {
      id: ex.apiKeyId,
      name: 'ci',
      service_type: 'compute',
      prefix: 'sk_live_4f9a',
      expires_at: null,
      created_at: ex.at,
      key: 'sk_live_4f9a2c7e1b8d4a6f9e3c0b5d7a1f2e8c',
    },
  });

/** The per-IP budget that refresh and logout share (RATE_LIMIT_REFRESH_PER_MIN). */
const refreshLimitNote =
  'Refreshes and logouts from one client IP share a budget of RATE_LIMIT_REFRESH_PER_MIN a minute (default 60); past it they answer 429 with `Retry-After` and change nothing.';

/** The tier's cap of live API keys (TIER_MAX_API_KEYS), as the routes that make one document it. */
const apiKeyCapNote =
  "A customer holds at most its tier's TIER_MAX_API_KEYS live keys (neither revoked nor expired; default starter 20, pro 100, " +
  'enterprise 1,000); a key past it answers 422 naming `body` (with `cap: "api_keys"`, `limit`, `count`, `requested`) and ' +
  'nothing changes. Revoking a key makes room.';

export const accountsDocs: RouteDocs = (registry) => {
  const tag = 'Accounts';
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'post',
    path: '/auth/register',
    summary: 'Create an account (and its customer, with the compute service at tier starter)',
    request: {
      body: jsonBody(registerBody, {
        email: 'ada@example.com',
        password: 'correct horse battery staple',
        accept_tos: true,
        tos_version: '1.0.0',
      }),
    },
    description: 'The password is hashed (bcrypt) in a small pool of threads; when its queue is full the answer is 503 with `Retry-After`.',
    responses: { 201: json(userSchema, 'Registered') },
    problems: [409, 422, 429, 503],
  });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'post',
    path: '/auth/login',
    summary: 'Exchange email and password for tokens',
    description:
      'Limited per client IP, and per account: after 10 failed logins in 15 minutes (from any address) the account answers 429 with `Retry-After`, even to the right password, until the window ends; a successful login clears the count. The password is checked in a small pool of threads; when its queue is full the answer is 503 with `Retry-After`.',
    request: { body: jsonBody(loginBody, { email: 'ada@example.com', password: 'correct horse battery staple' }) },
    responses: { 200: json(tokensSchema, 'Tokens') },
    problems: [401, 429, 503],
  });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'post',
    path: '/auth/refresh',
    summary: 'Rotate a refresh token (reusing a rotated one revokes its family)',
    description: refreshLimitNote,
    request: { body: jsonBody(refreshTokenBody, { refresh_token: 'rt_8Jv2kQ0xZt4mN7pW3cY6bR1sL9dF5gH' }) },
    responses: { 200: json(tokensSchema, 'New tokens') },
    problems: [401, 429],
  });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'post',
    path: '/auth/logout',
    summary: 'Revoke a refresh token',
    description: refreshLimitNote,
    request: { body: jsonBody(refreshTokenBody, { refresh_token: 'rt_8Jv2kQ0xZt4mN7pW3cY6bR1sL9dF5gH' }) },
    responses: { 204: noContent },
    problems: [429],
  });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'get',
    path: '/tos',
    summary: 'The current terms of service',
    responses: {
      200: json(z.object({ version: z.string(), text: z.string() }), 'Version and text', undefined, {
        version: '1.0.0',
        text: 'Chrysalis terms of service…',
      }),
    },
  });
  documentRoute(registry, {
    tag,
    auth: 'no-tos',
    method: 'get',
    path: '/auth/me',
    summary: 'Who the credentials belong to',
    responses: { 200: json(meSchema, 'The caller') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    auth: 'no-tos',
    method: 'post',
    path: '/tos/accept',
    summary: 'Accept the current terms of service',
    request: { body: jsonBody(tosAcceptBody, { version: '1.0.0' }) },
    responses: {
      200: json(z.object({ version: z.string(), accepted_at: timestamp }), 'Accepted', undefined, {
        version: '1.0.0',
        accepted_at: ex.at,
      }),
    },
    problems: [403, 422],
  });
  documentRoute(registry, {
    tag,
    auth: 'account',
    method: 'post',
    path: '/api-keys',
    summary: 'Create an API key (shown once)',
    description:
      'A key acts for the customer within one service (`service_type`). The edge proxy authenticates its traffic with such keys and bills it to the key’s service, ' +
      'so any call made with a key — to this API too — is metered, rate-limited and suspended as that service, not as `compute`. ' +
      apiKeyCapNote,
    request: { body: jsonBody(createApiKeyDocBody, { name: 'ci', service_type: 'compute', expires_at: '2027-12-31T23:59:59Z' }) },
    responses: { 201: json(newApiKeySchema, 'The key') },
    problems: [422],
  });
  documentRoute(registry, {
    tag,
    auth: 'account',
    method: 'get',
    path: '/api-keys',
    summary: "List the customer's API keys (prefixes only)",
    request: { query: listApiKeysQuery },
    responses: { 200: json(pageOf(apiKeySchema), 'A page of keys') },
  });
  documentRoute(registry, {
    tag,
    auth: 'account',
    method: 'delete',
    path: '/api-keys/:id',
    summary: 'Revoke an API key (idempotent)',
    request: { params: apiKeyIdParams },
    responses: { 204: noContent },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    auth: 'account',
    method: 'post',
    path: '/api-keys/:id/rotate',
    summary: 'Replace an API key with a new one; the old one stops working at once',
    description: 'The new key takes the old one’s room under the cap of live keys; an expired key has none to give. ' + apiKeyCapNote,
    request: {
      params: apiKeyIdParams,
      body: { content: { 'application/json': { schema: rotateApiKeyBody, example: { expires_at: null } } } },
    },
    responses: {
      201: json(newApiKeySchema, 'The new key', undefined, {
        ...(exampleOf(newApiKeySchema) as object),
        id: ex.jobId2,
        prefix: 'sk_live_7b1e',
        key: 'sk_live_7b1e0d9c3a5f4e2b8c6d1a0f9e7b3c5d',
        rotated_from: ex.apiKeyId,
      }),
    },
    problems: [404, 409, 422],
  });
};
