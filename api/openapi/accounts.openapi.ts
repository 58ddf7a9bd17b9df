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
import { documentRoute, json, jsonBody, noContent, pageOf, timestamp, type RouteDocs } from './document-route.js';

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
  .meta({ id: 'Tokens' });

export const userSchema = z
  .object({ id: z.uuid(), email: z.string(), customer_id: z.uuid(), role, created_at: timestamp })
  .meta({ id: 'User' });

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
  .meta({ id: 'Me' });

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
  .meta({ id: 'ApiKey' });

export const newApiKeySchema = apiKeySchema
  .omit({ revoked_at: true })
  .extend({ key: z.string().describe('`sk_live_…`, shown only in this answer'), rotated_from: z.uuid().optional() })
  .meta({ id: 'NewApiKey' });

export const accountsDocs: RouteDocs = (registry) => {
  const tag = 'Accounts';
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'post',
    path: '/auth/register',
    summary: 'Create an account (and its customer, with the compute service at tier starter)',
    request: { body: jsonBody(registerBody) },
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
    request: { body: jsonBody(loginBody) },
    responses: { 200: json(tokensSchema, 'Tokens') },
    problems: [401, 429, 503],
  });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'post',
    path: '/auth/refresh',
    summary: 'Rotate a refresh token (reusing a rotated one revokes its family)',
    request: { body: jsonBody(refreshTokenBody) },
    responses: { 200: json(tokensSchema, 'New tokens') },
    problems: [401],
  });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'post',
    path: '/auth/logout',
    summary: 'Revoke a refresh token',
    request: { body: jsonBody(refreshTokenBody) },
    responses: { 204: noContent },
  });
  documentRoute(registry, {
    tag,
    auth: 'none',
    method: 'get',
    path: '/tos',
    summary: 'The current terms of service',
    responses: { 200: json(z.object({ version: z.string(), text: z.string() }), 'Version and text') },
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
    request: { body: jsonBody(tosAcceptBody) },
    responses: { 200: json(z.object({ version: z.string(), accepted_at: timestamp }), 'Accepted') },
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
      'so any call made with a key — to this API too — is metered, rate-limited and suspended as that service, not as `compute`.',
    request: { body: jsonBody(createApiKeyDocBody) },
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
    request: { params: apiKeyIdParams, body: { content: { 'application/json': { schema: rotateApiKeyBody } } } },
    responses: { 201: json(newApiKeySchema, 'The new key') },
    problems: [404, 409, 422],
  });
};
