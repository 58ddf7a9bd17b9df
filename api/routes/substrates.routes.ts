import { Router, type Request } from 'express';
import { z } from 'zod';
import type { SubstrateRow } from '../../db/repositories/substrate-store.js';
import {
  deleteSubstrate,
  findSubstrateRow,
  replaceSubstrateMetadata,
  searchSubstrates,
  upsertSubstrates,
  type NewSubstrate,
} from '../../db/repositories/substrate-store.js';
import { checkExpression, createCelEnvironment } from '../../jobs/invoke/cel-environment.js';
import { atMostItems, atMostJson, atMostKeys, isLimitIssue } from '../../jobs/input-limits.js';
import { parametersSchema, substrateIdSchema } from '../../jobs/invoke/invoke.job.js';
import { maxDimensionValues } from '../../jobs/invoke/operations.js';
import { getJobDefinition } from '../../jobs/registry.js';
import { principalOf } from '../auth/authenticate.js';
import type { ApiDeps } from '../deps.js';
import { answerFromCache, preferredWaitMs, submitAndRespond } from '../job-responses.js';
import { decodeCursor, page, paginationQuery } from '../pagination.js';
import { fieldErrors, notFound, ProblemError, type FieldError } from '../problems.js';
import { unstorableInput } from '../input-guard.js';
import { forEachInSlices } from '../slices.js';
import { fieldErrorsProblem, parseInput } from '../validate.js';
import { substrateIdentity } from './substrate-identity.js';
import { inTransaction } from '../../db/transaction.js';

const metadataSchema = atMostJson(atMostKeys(z.record(z.string().min(1).max(128), z.unknown()), 64, 'metadata keys'), 8192, 'metadata');

export const createSubstrateBody = z.discriminatedUnion('expression_type', [
  z.strictObject({ expression_type: z.literal('expression'), expression: z.string().min(1), metadata: metadataSchema.optional() }),
  z.strictObject({ expression_type: z.literal('constant'), value: z.number().finite(), metadata: metadataSchema.optional() }),
]);
export const createSubstratesBatchBody = z.strictObject({
  substrates: atMostItems(z.array(createSubstrateBody).min(1), 1000, 'substrates'),
});
/** What the route parses at once: the list itself; its items are checked one by one in slices (checkBatchInSlices). */
const batchEnvelope = z.strictObject({ substrates: atMostItems(z.array(z.unknown()).min(1), 1000, 'substrates') });
export const patchSubstrateBody = z.strictObject({ metadata: metadataSchema });
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
/**
 * A substrate's name is `metadata.name` (SPEC §5 gives a substrate no other): `?name=` filters on it, and a
 * top-level `name` in a body is answered with where it goes rather than a bare "unknown field".
 */
const nameHint = {
  name: 'unknown field: a substrate\'s name is metadata.name ({"metadata": {"name": …}}), which GET /substrates?name= matches',
};

export const searchSubstratesQuery = z.object({
  name: z.string().max(256).optional().describe('Substrates whose `metadata.name` is exactly this (a substrate has no other name)'),
  expression_type: z.enum(['expression', 'constant']).optional(),
  created_after: z.iso.datetime({ offset: true }).optional(),
  ...paginationQuery,
});

const celEnvironment = createCelEnvironment();

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

type CreateSubstrate = z.infer<typeof createSubstrateBody>;

/** Checks syntax and builds the row; a bad expression is a 422 naming the field and position. */
function prepareSubstrate(customerId: string, body: CreateSubstrate, field: string): NewSubstrate | FieldError {
  if (body.expression_type === 'expression') {
    const problem = checkExpression(celEnvironment, body.expression);
    if (problem) {
      const where = problem.position ? ` at line ${problem.position.line}, column ${problem.position.column}` : '';
      return {
        field: `${field}.expression`,
        message: `${problem.message}${where}`,
        ...(problem.position ? { position: problem.position } : {}),
      };
    }
  }
  const source = body.expression_type === 'expression' ? body.expression : String(body.value);
  return {
    ...substrateIdentity(customerId, body.expression_type, source),
    customerId,
    expressionType: body.expression_type,
    expression: body.expression_type === 'expression' ? body.expression : null,
    value: body.expression_type === 'constant' ? body.value : null,
    metadata: body.metadata ?? {},
  };
}

const isFieldError = (value: NewSubstrate | FieldError): value is FieldError => 'field' in value;

/**
 * Checks a batch's items as the route's schema, the input guard and prepareSubstrate would check its whole body,
 * with the same answers (400 unstorable or malformed, 422 limits, then 422 expressions that do not parse),
 * but one item at a time in slices that yield to the event loop: compiling 1,000 expressions and checking
 * 60,000 metadata keys took seconds of CPU that /health and every other request waited behind.
 */
async function checkBatchInSlices(customerId: string, items: readonly unknown[]): Promise<NewSubstrate[]> {
  const unstorable: FieldError[] = [];
  const invalid: FieldError[] = [];
  let allLimits = true;
  const unparsed: FieldError[] = [];
  const prepared: NewSubstrate[] = [];
  await forEachInSlices(items, (item, index) => {
    const field = `body.substrates.${index}`;
    // As the input guard: at most 10 unstorable values named, and once there is one, nothing else matters.
    if (unstorable.length < maxUnstorableListed) unstorable.push(...unstorableInput(item, field, maxUnstorableListed - unstorable.length));
    if (unstorable.length > 0) return;
    const parsed = createSubstrateBody.safeParse(item);
    if (!parsed.success) {
      invalid.push(...fieldErrors(parsed.error, field, nameHint));
      allLimits &&= parsed.error.issues.every(isLimitIssue);
      return;
    }
    // A malformed body is refused as such; compiling the rest would be wasted.
    if (invalid.length > 0) return;
    const result = prepareSubstrate(customerId, parsed.data, field);
    if (isFieldError(result)) unparsed.push(result);
    else prepared.push(result);
  });
  if (unstorable.length > 0) throw fieldErrorsProblem(unstorable, false, 'input');
  if (invalid.length > 0) throw fieldErrorsProblem(invalid, allLimits, 'body');
  if (unparsed.length > 0)
    throw new ProblemError('unprocessable', `${unparsed.length} substrate(s) do not parse; none were created`, { errors: unparsed });
  return prepared;
}

/** Unstorable values one answer names, as the input guard (api/input-guard.ts). */
const maxUnstorableListed = 10;

function metadataFilters(query: Request['query']): Record<string, string> {
  const filters: Record<string, string> = {};
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
const earlyLookups = new WeakMap<Request, { substrateId: string; lookup: Promise<{ value: unknown } | null> }>();

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
  const body = invokeBody.safeParse(req.body ?? {});
  if (!id.success || !body.success) return;
  const lookup = deps.cache.get(principalOf(req).customerId, id.data, body.data.parameters ?? {});
  earlyLookups.set(req, { substrateId: id.data, lookup });
}

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
    const body = parseInput(invokeBody, req.body ?? {}, 'body');
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
    const [row] = await upsertSubstrates(em(), [prepared]);
    if (!row) throw new Error('substrate upsert returned nothing');
    res
      .status(row.created ? 201 : 200)
      .location(`/api/v1/substrates/${row.id}`)
      .json(substrateView(row));
  });

  router.post('/substrates/batch', async (req, res) => {
    const { customerId } = principalOf(req);
    const { substrates } = parseInput(batchEnvelope, req.body, 'body', nameHint);
    const prepared = await checkBatchInSlices(customerId, substrates);
    const unique = [...new Map(prepared.map((s) => [s.id, s])).values()];
    const rows = await inTransaction(em(), (tx) => upsertSubstrates(tx, unique));
    const byId = new Map(rows.map((row) => [row.id, row]));
    const items = prepared.map((s) => byId.get(s.id)).filter((row) => row !== undefined);
    res.status(201).json({
      items: items.map((row) => ({ ...substrateView(row), created: row.created })),
      created: rows.filter((row) => row.created).length,
    });
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
    const after = decodeCursor(query.cursor, z.object({ createdAt: z.iso.datetime(), id: substrateIdSchema }));
    const rows = await searchSubstrates(em(), {
      customerId,
      name: query.name,
      expressionType: query.expression_type,
      metadata,
      createdAfter: query.created_after ? new Date(query.created_after) : undefined,
      after,
      limit: query.limit + 1,
    });
    res.json(page(rows, query.limit, substrateView, (row) => ({ createdAt: new Date(row.createdAt).toISOString(), id: row.id })));
  });

  router.get('/substrates/:id', async (req, res) => {
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
    if (!(await deleteSubstrate(em(), customerId, id))) throw notFound(`substrate ${id}`);
    await deps.cache.invalidate(customerId, id);
    res.status(204).end();
  });

  router.post('/substrates/:id/divide', async (req, res) => {
    const { customerId } = principalOf(req);
    const { id } = parseInput(substrateParams, req.params, 'params');
    parseInput(z.strictObject({}), req.body ?? {}, 'body');
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
