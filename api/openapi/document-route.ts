import type { OpenAPIRegistry, ResponseConfig, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { problemSchema, problemTypes } from '../problems.js';

/** Adds the routes of one `*.routes.ts` file to the document. One per routes file, listed in api/openapi.ts. */
export type RouteDocs = (registry: OpenAPIRegistry) => void;

/** The RFC 9457 body every error answer carries; one component shared by every route. */
export const problem = problemSchema.meta({
  id: 'Problem',
  description: `RFC 9457 problem details. \`type\` is https://chrysalis.dev/problems/<name>, one of: ${Object.keys(problemTypes).join(', ')}.`,
});

const problemDescriptions: Record<number, string> = {
  400: 'Malformed JSON, wrong types, missing or unknown fields (`validation`)',
  401: 'Missing, invalid, expired or revoked credentials (`unauthorized`)',
  402: 'The service is suspended or the balance does not cover it (`payment-required`)',
  403: 'Not allowed (`forbidden`), or the current terms of service are not accepted yet (`tos-required`)',
  404: "No such resource, or another customer's (`not-found`)",
  409: 'The resource is in a state that does not allow this (`conflict`)',
  413: 'Request body too large (`payload-too-large`)',
  415: 'The body is not of the type this route takes, e.g. not `application/json` (`unsupported-media-type`)',
  422: 'Well-formed input that breaks a rule, such as a limit exceeded (`unprocessable`)',
  429: 'Rate limited (`rate-limited`; see `Retry-After` and the `RateLimit-*` headers; an earlier read whose answer was over 1 MiB counted one more read per further MiB), or, on a submit, past the tier’s cap of queued or running jobs (`too-many-jobs`, with `cap`, `limit`, `count` and `Retry-After`)',
  503: 'A dependency is unreachable (`unavailable`)',
};

/** Problem answers for these statuses. */
export function problemResponses(statuses: Iterable<number>): Record<number, ResponseConfig> {
  const responses: Record<number, ResponseConfig> = {};
  for (const status of [...new Set(statuses)].sort()) {
    responses[status] = {
      description: problemDescriptions[status] ?? 'Error',
      content: { 'application/problem+json': { schema: problem } },
    };
  }
  return responses;
}

/**
 * The values the examples share, so that one job, substrate or customer is the same thing in every
 * example of the document (and in the README's Cookbook).
 */
export const ex = {
  jobId: '0192f1c4-7a3e-7c61-9d1e-4f6b2a8c0e11',
  jobId2: '0192f1c4-7a3e-7c61-9d1e-4f6b2a8c0e12',
  customerId: '0192f1c0-1b2c-7d3e-8f40-5a6b7c8d9e01',
  userId: '0192f1c0-1b2c-7d3e-8f40-5a6b7c8d9e02',
  adminId: '0192f1c0-1b2c-7d3e-8f40-5a6b7c8d9e03',
  apiKeyId: '0192f1c2-3d4e-7f50-8a61-b2c3d4e5f601',
  webhookId: '0192f1c3-4e5f-7061-8b72-c3d4e5f6a701',
  deliveryId: '0192f1c3-4e5f-7061-8b72-c3d4e5f6a702',
  relationshipId: '0192f1c5-6a7b-7c8d-9e0f-a1b2c3d4e501',
  transactionId: '0192f1c6-7b8c-7d9e-8f01-b2c3d4e5f601',
  substrateId: '0x1f2e3d4c5b6a7988',
  substrateId2: '0x8a7b6c5d4e3f2019',
  at: '2026-12-03T17:30:00.000Z',
  later: '2026-12-03T17:30:00.412Z',
} as const;

/** The example a schema carries in its metadata (`.meta({ example })`), if any. */
export function exampleOf(schema: z.ZodType): unknown {
  return (schema.meta() as { example?: unknown } | undefined)?.example;
}

/** A JSON answer; its example is the schema's own unless one is given. */
export function json(
  schema: z.ZodType,
  description: string,
  headers?: ResponseConfig['headers'],
  example: unknown = exampleOf(schema),
): ResponseConfig {
  return {
    description,
    ...(headers ? { headers } : {}),
    content: { 'application/json': { schema, ...(example === undefined ? {} : { example }) } },
  };
}

/** A JSON request body, with an example of a body the route takes (tests/openapi/examples.test.ts requires one). */
export function jsonBody(
  schema: z.ZodType,
  example: unknown = exampleOf(schema),
  description?: string,
): NonNullable<RouteConfig['request']>['body'] {
  return {
    required: true,
    ...(description ? { description } : {}),
    content: { 'application/json': { schema, ...(example === undefined ? {} : { example }) } },
  };
}

export const noContent: ResponseConfig = { description: 'Done; no body' };

/** `{items, next_cursor}`: a cursor-paginated list of `item`; its example is one page of the item's example. */
export function pageOf(item: z.ZodType) {
  const page = z.object({
    items: z.array(item),
    next_cursor: z.string().nullable().describe('Pass as `?cursor=` for the next page; null on the last page'),
  });
  const example = exampleOf(item);
  return example === undefined ? page : page.meta({ example: { items: [example], next_cursor: null } });
}

export const timestamp = z.iso.datetime().describe('ISO 8601, UTC');

/**
 * Who may call a route, and so which problem answers it can give besides its own:
 * `metered` (the default): a JWT access token or an API key, held to the TOS gate, the service check
 * and the per-customer rate limit — 401, 402, 403, 429. `account`: bearer with the TOS gate and the
 * rate limit — 401, 403, 429. `no-tos`: bearer and the rate limit, before the TOS is accepted — 401, 429.
 * `admin`: bearer, role admin — 401, 403. `none`: public. Wherever a bearer token is taken, so is the
 * console's session cookie (with a CSRF check on writes).
 */
export type RouteAuth = 'metered' | 'account' | 'no-tos' | 'admin' | 'none';

const authProblems: Record<RouteAuth, number[]> = {
  metered: [401, 402, 403, 429],
  account: [401, 403, 429],
  'no-tos': [401, 429],
  admin: [401, 403],
  none: [],
};

export interface RouteDoc extends Omit<RouteConfig, 'path' | 'security' | 'responses' | 'tags'> {
  /** Express syntax (`/jobs/:id`), relative to /api/v1; turned into `/jobs/{id}`. */
  path: string;
  tag: string;
  /** Default `metered`. */
  auth?: RouteAuth;
  responses: Record<number, ResponseConfig>;
  /** Problem statuses this route answers besides the ones its auth and input imply. */
  problems?: number[];
  /** Overrides the security the auth implies (e.g. the metrics token). */
  security?: RouteConfig['security'];
}

/** Registers one route with the problem answers its auth implies, 400 when it takes input and 415 when that is a JSON body. */
export function documentRoute(registry: OpenAPIRegistry, doc: RouteDoc): void {
  const { path, tag, auth = 'metered', responses, problems = [], security, ...rest } = doc;
  const statuses = new Set([...problems, ...authProblems[auth]]);
  if (rest.request?.body || rest.request?.query || rest.request?.params) statuses.add(400);
  if (rest.request?.body?.content['application/json']) statuses.add(415);
  registry.registerPath({
    ...rest,
    path: path.replace(/:([A-Za-z0-9_]+)/g, '{$1}'),
    tags: [tag],
    security: security ?? (auth === 'none' ? [] : [{ bearerAuth: [] }, { consoleSession: [] }]),
    responses: { ...responses, ...problemResponses([...statuses].filter((status) => !(status in responses))) },
  });
}
