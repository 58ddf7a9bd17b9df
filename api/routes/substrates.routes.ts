import { Router, type Request } from 'express';
import { z } from 'zod';
import {
  deleteSubstrate,
  findSubstrateRow,
  replaceSubstrateMetadata,
  searchSubstrates,
  upsertSerialisedSubstrates,
  upsertSubstrates,
  type SubstrateCapReached,
  type SubstrateRow,
  type SubstrateRowWithMetadataText,
} from '../../db/repositories/substrate-store.js';
import { atMostItems } from '../../jobs/input-limits.js';
import { parametersSchema, substrateIdSchema } from '../../jobs/invoke/invoke.job.js';
import { maxDimensionValues } from '../../jobs/invoke/operations.js';
import { getJobDefinition } from '../../jobs/registry.js';
import { principalOf } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import type { CacheLookup } from '../../db/invocation-cache.js';
import { answerFromCache, preferredWaitMs, submitAndRespond } from '../job-responses.js';
import { jsonBodyOf } from '../json-text-body.js';
import { decodeCursor, page, paginationQuery } from '../pagination.js';
import { capProblem, notFound, ProblemError } from '../problems.js';
import { isFieldError, prepareSubstrate } from '../substrate-batch/prepare-substrate.js';
import { optionalBody, parseInput, refuseBodyFields, refuseQueryFields } from '../validate.js';
import { createSubstrateBody, nameHint, patchSubstrateBody } from './substrate-bodies.js';
import { inTransaction } from '../../db/transaction.js';
import { filterTime, storableTime } from '../storable-time.js';

export { createSubstrateBody, createSubstratesBatchBody, patchSubstrateBody } from './substrate-bodies.js';
export const substrateParams = z.object({ id: substrateIdSchema });
export const invokeBody = z.strictObject({ parameters: parametersSchema.optional() });
const finite = z.number().finite();
export const operationBodies = {
  add: z.strictObject({ value: finite, parameters: parametersSchema.optional() }),
  subtract: z.strictObject({ value: finite, parameters: parametersSchema.optional() }),
  modulus: z.strictObject({ modulus: finite, parameters: parametersSchema.optional() }),
  power: z.strictObject({ exponent: finite, parameters: parametersSchema.optional() }),
  root: z.strictObject({ degree: finite, parameters: parametersSchema.optional() }),
} as const;
export const multiplyBody = z.strictObject({
  dimension_values: atMostItems(z.array(finite).min(1), maxDimensionValues, 'dimension values'),
});
export const searchSubstratesQuery = z.object({
  name: z.string().max(256).optional().describe('Substrates whose `metadata.name` is exactly this (a substrate has no other name)'),
  expression_type: z.enum(['expression', 'constant']).optional(),
  created_after: filterTime().optional(),
  ...paginationQuery,
});

/**
 * `{ ...substrateView(row), created }` as JSON text, its metadata spliced in as PostgreSQL gave it: a 10 MB
 * batch's answer is neither parsed from the database nor serialised again on the event loop.
 */
function substrateViewJson(row: SubstrateRowWithMetadataText): string {
  const { metadataText, created, ...rest } = row;
  const { metadata: _none, created_at, updated_at, ...head } = substrateView({ ...rest, metadata: {} });
  return `${JSON.stringify(head).slice(0, -1)},"metadata":${metadataText},${JSON.stringify({ created_at, updated_at, created }).slice(1)}`;
}

export function substrateView(row: SubstrateRow) {
  return {
    substrate_id: row.id,
    identity: row.identity,
    expression_type: row.expressionType,
    ...(row.expressionType === 'constant' ? { value: row.value } : {}),
    metadata: row.metadata,
    created_at: new Date(row.createdAt).toISOString(),
    updated_at: new Date(row.updatedAt).toISOString(),
  };
}

function metadataFilters(query: Request['query']): Record<string, string> {
  // No prototype: `metadata.__proto__=x` is a filter on that key (which matches nothing), not a new prototype.
  const filters: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, value] of Object.entries(query)) {
    if (!key.startsWith('metadata.')) continue;
    const name = key.slice('metadata.'.length);
    if (!name || typeof value !== 'string' || value.length > 256) {
      throw new ProblemError('validation', `invalid metadata filter ${key}`, {
        errors: [{ field: `query.${key}`, message: 'give one value of at most 256 characters' }],
      });
    }
    filters[name] = value;
  }
  return filters;
}

/** `POST /substrates/:id/invoke` below the metered prefix, its id captured. */
const invokePath = /^\/substrates\/([^/]+)\/invoke$/;

/** Cache lookups started before the request's limits were checked (`startInvokeCacheLookup`), by request. */
const earlyLookups = new WeakMap<Request, { substrateId: string; lookup: Promise<CacheLookup> }>();

/**
 * For a `Prefer: wait` invoke that `answerFromCache` will look up: starts that lookup now, before the
 * in-flight and rate limits are checked, so both go to Redis in the same turn (one pipelined write, one
 * round trip) instead of one after the other. Call it after authentication. A request the limits refuse
 * has looked for nothing it is shown; one whose body or id does not parse looks nothing up (the route
 * answers 400 as before).
 */
export function startInvokeCacheLookup(deps: ApiDeps, req: Request): void {
  if (req.method !== 'POST' || preferredWaitMs(req) === null || req.header('idempotency-key') !== undefined) return;
  const match = invokePath.exec(req.path);
  if (!match) return;
  const id = substrateIdSchema.safeParse(match[1]);
  const body = invokeBody.safeParse(optionalBody(req.body));
  if (!id.success || !body.success) return;
  const lookup = deps.cache.lookup(principalOf(req).customerId, id.data, body.data.parameters ?? {});
  earlyLookups.set(req, { substrateId: id.data, lookup });
}

/**
 * Substrates just created are cached again (`InvocationCache.markCreated`: a deleted one's old epoch ends). Best
 * effort: if Redis cannot answer, the create stands and a re-created substrate goes uncached until its customer's
 * cache entry expires.
 */
async function cacheCreated(deps: ApiDeps, customerId: string, substrateIds: readonly string[]): Promise<void> {
  await deps.cache
    .markCreated(customerId, substrateIds)
    .catch((error: unknown) => deps.logger.warn({ err: error, customerId }, 'could not mark created substrates in the invocation cache'));
}

/** The 422 of a create that would take its customer past the tier's cap of substrates (TIER_MAX_SUBSTRATES). */
const substrateCapProblem = ({ capReached }: SubstrateCapReached, field: string): ProblemError =>
  capProblem('substrates', 'substrates', capReached, field, 'delete some first');

export function substratesRoutes(deps: ApiDeps): Router {
  const router = Router();
  const em = () => deps.orm.em.fork();

  async function requireSubstrate(customerId: string, id: string): Promise<SubstrateRow> {
    const row = await findSubstrateRow(em(), customerId, id);
    if (!row) throw notFound(`substrate ${id}`);
    return row;
  }

  // The busiest route first: a router tries its routes in order.
  router.post('/substrates/:id/invoke', async (req, res) => {
    const { customerId } = principalOf(req);
    const { id } = parseInput(substrateParams, req.params, 'params');
    const body = parseInput(invokeBody, optionalBody(req.body), 'body');
    const parameters = body.parameters ?? {};
    const early = earlyLookups.get(req);
    const cache = await answerFromCache(deps, req, res, customerId, id, parameters, early?.substrateId === id ? early.lookup : undefined);
    if (cache === 'answered') return;
    await submitAndRespond(deps, req, res, customerId, {
      definition: getJobDefinition('invoke')!,
      payload: { substrate_id: id, parameters },
      requireSubstrateId: id,
      hints: cache === 'missed' ? { cacheMissed: true } : {},
    });
  });

  router.post('/substrates', async (req, res) => {
    const { customerId } = principalOf(req);
    const prepared = prepareSubstrate(customerId, parseInput(createSubstrateBody, req.body, 'body', nameHint), 'body');
    if (isFieldError(prepared))
      throw new ProblemError('unprocessable', `expression does not parse: ${prepared.message}`, { errors: [prepared] });
    const rows = await upsertSubstrates(em(), [prepared], deps.config.tierMaxSubstrates[principalOf(req).tier]);
    if (!Array.isArray(rows)) throw substrateCapProblem(rows, 'body');
    const [row] = rows;
    if (!row) throw new Error('substrate upsert returned nothing');
    if (row.created) await cacheCreated(deps, customerId, [row.id]);
    res
      .status(row.created ? 201 : 200)
      .location(`/api/v1/substrates/${row.id}`)
      .json(substrateView(row));
  });

  router.post('/substrates/batch', async (req, res) => {
    const { customerId, tier } = principalOf(req);
    // Parsed, checked and compiled in the batch checker's thread; only the rows' JSON text comes back.
    const { ids, rows: rowsJson } = await deps.batchChecker.check(customerId, jsonBodyOf(req.body));
    const distinct = [...new Set(ids)];
    const rows = await inTransaction(em(), (tx) =>
      upsertSerialisedSubstrates(tx, customerId, rowsJson, distinct, deps.config.tierMaxSubstrates[tier]),
    );
    if (!Array.isArray(rows)) throw substrateCapProblem(rows, 'body.substrates');
    const byId = new Map(rows.map((row) => [row.id, row]));
    const items = ids.flatMap((id) => {
      const row = byId.get(id);
      return row ? [substrateViewJson(row)] : [];
    });
    const createdIds = rows.filter((row) => row.created).map((row) => row.id);
    await cacheCreated(deps, customerId, createdIds);
    const created = createdIds.length;
    // As POST /substrates answers: 201 when something was created, 200 when every one already existed.
    res
      .status(created > 0 ? 201 : 200)
      .type('application/json')
      .send(`{"items":[${items.join(',')}],"created":${created}}`);
  });

  router.post('/substrates/multiply', async (req, res) => {
    const { customerId } = principalOf(req);
    const body = parseInput(multiplyBody, req.body, 'body');
    await submitAndRespond(deps, req, res, customerId, {
      definition: getJobDefinition('invoke')!,
      payload: { operation: { op: 'multiply', dimension_values: body.dimension_values } },
    });
  });

  router.get('/substrates', async (req, res) => {
    const { customerId } = principalOf(req);
    const metadata = metadataFilters(req.query);
    const plainQuery = Object.fromEntries(Object.entries(req.query).filter(([key]) => !key.startsWith('metadata.')));
    const query = parseInput(searchSubstratesQuery.strict(), plainQuery, 'query');
    const after = decodeCursor(query.cursor, z.object({ createdAt: storableTime(), id: substrateIdSchema }));
    const rows = await searchSubstrates(em(), {
      customerId,
      name: query.name,
      expressionType: query.expression_type,
      metadata,
      createdAfter: query.created_after ? new Date(query.created_after) : undefined,
      after,
      limit: query.limit + 1,
    });
    res.json(page(rows, query.limit, substrateView, (row) => ({ createdAt: row.cursorAt, id: row.id })));
  });

  router.get('/substrates/:id', async (req, res) => {
    refuseQueryFields(req.query);
    const { customerId } = principalOf(req);
    const { id } = parseInput(substrateParams, req.params, 'params');
    res.json(substrateView(await requireSubstrate(customerId, id)));
  });

  router.patch('/substrates/:id', async (req, res) => {
    const { customerId } = principalOf(req);
    const { id } = parseInput(substrateParams, req.params, 'params');
    const body = parseInput(patchSubstrateBody, req.body, 'body', nameHint);
    const row = await replaceSubstrateMetadata(em(), customerId, id, body.metadata);
    if (!row) throw notFound(`substrate ${id}`);
    await deps.cache.invalidate(customerId, id);
    res.json(substrateView(row));
  });

  router.delete('/substrates/:id', async (req, res) => {
    const { customerId } = principalOf(req);
    const { id } = parseInput(substrateParams, req.params, 'params');
    refuseBodyFields(req.body);
    if (!(await deleteSubstrate(em(), customerId, id))) throw notFound(`substrate ${id}`);
    await deps.cache.markDeleted(customerId, id);
    res.status(204).end();
  });

  router.post('/substrates/:id/divide', async (req, res) => {
    const { customerId } = principalOf(req);
    const { id } = parseInput(substrateParams, req.params, 'params');
    refuseBodyFields(req.body);
    await submitAndRespond(deps, req, res, customerId, {
      definition: getJobDefinition('divide')!,
      payload: { substrate_id: id },
      requireSubstrateId: id,
    });
  });

  for (const [op, schema] of Object.entries(operationBodies)) {
    router.post(`/substrates/:id/${op}`, async (req, res) => {
      const { customerId } = principalOf(req);
      const { id } = parseInput(substrateParams, req.params, 'params');
      const { parameters, ...operand } = parseInput(schema, req.body, 'body') as unknown as {
        parameters?: Record<string, unknown>;
      } & Record<string, number>;
      await submitAndRespond(deps, req, res, customerId, {
        definition: getJobDefinition('invoke')!,
        payload: { substrate_id: id, parameters: parameters ?? {}, operation: { op, ...operand } },
        requireSubstrateId: id,
      });
    });
  }

  return router;
}
