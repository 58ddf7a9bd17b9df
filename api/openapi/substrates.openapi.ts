import { z } from 'zod';
import {
  createSubstrateBody,
  createSubstratesBatchBody,
  invokeBody,
  multiplyBody,
  operationBodies,
  patchSubstrateBody,
  searchSubstratesQuery,
  substrateParams,
} from '../routes/substrates.routes.js';
import { documentRoute, ex, exampleOf, json, jsonBody, noContent, pageOf, timestamp, type RouteDocs } from './document-route.js';
import { submitHeaders, submitResponsesOf } from './jobs.openapi.js';

/** A substrate as every endpoint shows it (never with its expression text). */
export const substrateSchema = z
  .object({
    substrate_id: z.string().regex(/^0x[0-9a-f]{16}$/),
    identity: z.string().regex(/^\d+$/).describe('The 64-bit identity as a decimal string (a JSON number would lose precision)'),
    expression_type: z.enum(['expression', 'constant']),
    value: z.number().optional().describe('Constants only'),
    metadata: z.record(z.string(), z.unknown()),
    created_at: timestamp,
    updated_at: timestamp,
  })
  .meta({
    id: 'Substrate',
    example: {
      substrate_id: ex.substrateId,
      identity: '2246913496451811720',
      expression_type: 'expression',
      metadata: { team: 'pricing' },
      created_at: ex.at,
      updated_at: ex.at,
    },
  });

const constantExample = {
  substrate_id: ex.substrateId2,
  identity: '9974301298342223897',
  expression_type: 'constant',
  value: 42,
  metadata: {},
  created_at: ex.at,
  updated_at: ex.at,
};

/** POST /substrates/batch's answer: every substrate in request order, each saying whether it was new. */
const substrateBatchSchema = z.object({
  items: z.array(substrateSchema.extend({ created: z.boolean() })),
  created: z.int().min(0).describe('How many were new: 201 when at least one, 200 when none'),
});

const operationDescriptions: Record<keyof typeof operationBodies, string> = {
  add: 'Result `{original_value, new_value, operation}`.',
  subtract: 'Result `{original_value, new_value, operation}`.',
  modulus: 'Result `{value, modulus, expressed, residue}`; modulus 0 fails the job.',
  power: 'Result `{value, exponent, result}`; a non-finite result fails the job.',
  root: 'Result `{value, degree, result}`; an even root of a negative fails the job.',
};

const operationExamples: Record<keyof typeof operationBodies, object> = {
  add: { value: 10 },
  subtract: { value: 2.5 },
  modulus: { modulus: 7 },
  power: { exponent: 2 },
  root: { degree: 3, parameters: { x: 27 } },
};

const operationResults: Record<keyof typeof operationBodies, object> = {
  add: { original_value: 42, new_value: 52, operation: 'add' },
  subtract: { original_value: 42, new_value: 39.5, operation: 'subtract' },
  modulus: { value: 42, modulus: 7, expressed: 6, residue: 0 },
  power: { value: 42, exponent: 2, result: 1764 },
  root: { value: 27, degree: 3, result: 3 },
};

/** The tier's cap of substrates (TIER_MAX_SUBSTRATES), as each create route documents it. */
const substrateCapNote = (field: string) =>
  "A customer keeps at most its tier's TIER_MAX_SUBSTRATES substrates (default starter 10,000, pro 100,000, enterprise " +
  `1,000,000); a create that would pass it answers 422 naming \`${field}\` (with \`limit\`, \`count\`, \`requested\`) and stores ` +
  'nothing. Re-creating an existing substrate takes no room.';

export const substratesDocs: RouteDocs = (registry) => {
  const tag = 'Substrates';
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/substrates',
    summary: 'Create a substrate (or get the existing one)',
    description:
      'CEL expressions; a syntax error is a 422 naming the position. The id hashes owner, type and expression. ' + substrateCapNote('body'),
    request: { body: jsonBody(createSubstrateBody, { expression_type: 'expression', expression: 'x + y', metadata: { team: 'pricing' } }) },
    responses: { 201: json(substrateSchema, 'Created'), 200: json(substrateSchema, 'It already existed') },
    problems: [422],
  });
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/substrates/batch',
    summary: 'Create up to 1,000 substrates, all or nothing',
    description: `The new ones count together toward the cap: ${substrateCapNote('body.substrates')}`,
    request: {
      body: jsonBody(createSubstratesBatchBody, {
        substrates: [
          { expression_type: 'expression', expression: 'x + y', metadata: { team: 'pricing' } },
          { expression_type: 'constant', value: 42 },
        ],
      }),
    },
    responses: {
      201: json(substrateBatchSchema, 'Every substrate, in request order; at least one was new', undefined, {
        items: [
          { ...(exampleOf(substrateSchema) as object), created: false },
          { ...constantExample, created: true },
        ],
        created: 1,
      }),
      200: json(substrateBatchSchema, 'Every substrate, in request order; every one already existed', undefined, {
        items: [{ ...(exampleOf(substrateSchema) as object), created: false }],
        created: 0,
      }),
    },
    problems: [413, 422],
  });
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/substrates/multiply',
    summary: 'Multiply dimension values (an invoke job; no substrate needed)',
    description: 'Result `{unity_value, operation, dimensions_collapsed}`.',
    request: { headers: submitHeaders, body: jsonBody(multiplyBody, { dimension_values: [1.5, 2, 3.25] }) },
    responses: submitResponsesOf('invoke', { unity_value: 9.75, operation: 'multiply', dimensions_collapsed: 3 }),
    problems: [422],
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/substrates',
    summary: 'Search substrates',
    description: 'Also `?metadata.KEY=value` filters, one per key.',
    request: { query: searchSubstratesQuery },
    responses: { 200: json(pageOf(substrateSchema), 'A page of substrates') },
  });
  documentRoute(registry, {
    tag,
    method: 'get',
    path: '/substrates/:id',
    summary: 'Get a substrate',
    request: { params: substrateParams },
    responses: { 200: json(substrateSchema, 'The substrate') },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    method: 'patch',
    path: '/substrates/:id',
    summary: "Replace a substrate's metadata",
    request: { params: substrateParams, body: jsonBody(patchSubstrateBody, { metadata: { team: 'pricing', owner: 'ada' } }) },
    responses: { 200: json(substrateSchema, 'The substrate') },
    problems: [404, 422],
  });
  documentRoute(registry, {
    tag,
    method: 'delete',
    path: '/substrates/:id',
    summary: 'Delete a substrate (and its relationships)',
    request: { params: substrateParams },
    responses: { 204: noContent },
    problems: [404],
  });
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/substrates/:id/invoke',
    summary: 'Evaluate the expression (an invoke job)',
    description: 'Result `{substrate_id, result, invocation_time_ms, cached}`; repeated parameters are served from the cache.',
    request: { params: substrateParams, headers: submitHeaders, body: jsonBody(invokeBody, { parameters: { x: 5, y: 7 } }) },
    responses: submitResponsesOf('invoke', { substrate_id: ex.substrateId, result: 12, invocation_time_ms: 0.4, cached: false }),
    problems: [404, 422],
  });
  documentRoute(registry, {
    tag,
    method: 'post',
    path: '/substrates/:id/divide',
    summary: 'Project the substrate on the nine dimensions (a divide job)',
    description: 'Result `{substrate_id, dimensions: [{level, name, description, value}] × 9, fibonacci_sequence}`.',
    request: {
      params: substrateParams,
      headers: submitHeaders,
      body: { content: { 'application/json': { schema: z.strictObject({}), example: {} } } },
    },
    responses: submitResponsesOf('divide', {
      substrate_id: ex.substrateId,
      dimensions: [{ level: 1, name: 'unity', description: 'The whole', value: 1 }],
      fibonacci_sequence: [1, 1, 2, 3, 5, 8, 13, 21, 34],
    }),
    problems: [404],
  });
  for (const [op, body] of Object.entries(operationBodies)) {
    documentRoute(registry, {
      tag,
      method: 'post',
      path: `/substrates/:id/${op}`,
      summary: `Apply ${op} to the substrate's value (an invoke job)`,
      description: operationDescriptions[op as keyof typeof operationBodies],
      request: {
        params: substrateParams,
        headers: submitHeaders,
        body: jsonBody(body, operationExamples[op as keyof typeof operationBodies]),
      },
      responses: submitResponsesOf('invoke', operationResults[op as keyof typeof operationBodies]),
      problems: [404, 422],
    });
  }
};
