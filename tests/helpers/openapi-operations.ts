import { randomUUID } from 'node:crypto';
import { buildOpenApiDocument, type OpenApiDocument } from '../../api/openapi.js';

/** The parts of a JSON Schema (as zod-to-openapi writes them) that the suites read. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: unknown[];
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  default?: unknown;
}

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  schema: JsonSchema;
}

/** One `METHOD path` of the document, with what it takes. */
export interface ApiOperation {
  /** `GET /jobs/{id}`. */
  key: string;
  method: string;
  /** OpenAPI syntax, relative to /api/v1: `/jobs/{id}`. */
  path: string;
  pathParams: string[];
  query: Parameter[];
  headers: Parameter[];
  body?: { contentType: string; schema: JsonSchema };
  /** `none` (public), `bearer` (JWT or API key) or `metrics` (METRICS_TOKEN). */
  auth: 'none' | 'bearer' | 'metrics';
  /** Content types of the success answers (`text/event-stream` marks a stream). */
  successTypes: string[];
}

const methods = ['get', 'put', 'post', 'delete', 'patch'] as const;

interface RawOperation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
  security?: Array<Record<string, unknown>>;
  responses: Record<string, { content?: Record<string, unknown> }>;
}

/** Every operation of the OpenAPI document (the one `GET /openapi.json` serves), in document order. */
export function apiOperations(document: OpenApiDocument = buildOpenApiDocument()): ApiOperation[] {
  const operations: ApiOperation[] = [];
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const method of methods) {
      const raw = (item as Record<string, RawOperation | undefined>)[method];
      if (!raw) continue;
      const parameters = raw.parameters ?? [];
      const [contentType, media] = Object.entries(raw.requestBody?.content ?? {})[0] ?? [];
      const security = raw.security ?? [];
      const successTypes = Object.entries(raw.responses)
        .filter(([status]) => status.startsWith('2'))
        .flatMap(([, response]) => Object.keys(response.content ?? {}));
      operations.push({
        key: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        pathParams: [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1] as string),
        query: parameters.filter((p) => p.in === 'query'),
        headers: parameters.filter((p) => p.in === 'header'),
        ...(contentType && media ? { body: { contentType, schema: media.schema } } : {}),
        auth: security.length === 0 ? 'none' : security.some((s) => 'metricsToken' in s) ? 'metrics' : 'bearer',
        successTypes,
      });
    }
  }
  return operations;
}

/** `/jobs/{id}` with `{id: 'x'}` → `/api/v1/jobs/x`. Values are inserted as given (encode them first). */
export function fillPath(path: string, values: Record<string, string>): string {
  return `/api/v1${path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for {${name}} in ${path}`);
    return value;
  })}`;
}

/** Follows `$ref`s into `components.schemas`. */
export function resolveSchema(document: OpenApiDocument, schema: JsonSchema): JsonSchema {
  let current = schema;
  for (let hops = 0; current.$ref; hops++) {
    if (hops > 20) throw new Error(`$ref cycle at ${current.$ref}`);
    const name = current.$ref.replace('#/components/schemas/', '');
    const target = (document.components?.schemas as Record<string, JsonSchema> | undefined)?.[name];
    if (!target) throw new Error(`unresolved $ref ${current.$ref}`);
    current = target;
  }
  return current;
}

/** The JSON types a schema admits (`integer` counts as `number` too). Empty: anything. */
export function typesOf(document: OpenApiDocument, schema: JsonSchema): string[] {
  const resolved = resolveSchema(document, schema);
  const alternatives = resolved.oneOf ?? resolved.anyOf;
  if (alternatives) return [...new Set(alternatives.flatMap((alternative) => typesOf(document, alternative)))];
  if (resolved.enum) return [...new Set(resolved.enum.map((value) => (value === null ? 'null' : typeof value)))];
  const types = resolved.type === undefined ? [] : Array.isArray(resolved.type) ? resolved.type : [resolved.type];
  return types.flatMap((type) => (type === 'integer' ? ['integer', 'number'] : [type]));
}

/** Strings that fit the formats and patterns the API's schemas use. */
function exampleString(schema: JsonSchema): string {
  if (schema.format === 'email') return 'fuzz@example.test';
  if (schema.format === 'date-time') return new Date(Date.now() + 86_400_000).toISOString();
  if (schema.format === 'uri') return 'http://127.0.0.1:9/hook';
  if (schema.format === 'uuid') return randomUUID();
  if (schema.pattern === '^0x[0-9a-f]{16}$') return '0x0123456789abcdef';
  if (schema.pattern?.includes('a-z0-9-')) return 'compute';
  if (schema.pattern) return 'example';
  return 'x'.repeat(Math.max(1, schema.minLength ?? 1));
}

export interface ExampleOptions {
  /**
   * Also fill optional properties (except URLs, which would send webhooks). Needed where a rule the
   * JSON Schema cannot state asks for one (an invoke payload needs `substrate_id` or `operation`). Default false.
   */
  optional?: boolean;
}

/**
 * A value of the right shape for `schema`: required properties (and optional ones if asked), the first
 * enum value and the first alternative of a union. Not always accepted (an id names nothing, an email may
 * be taken), but it passes the schema, so a request built from it reaches what comes after validation.
 */
export function exampleOf(document: OpenApiDocument, schema: JsonSchema, options: ExampleOptions = {}): unknown {
  const resolved = resolveSchema(document, schema);
  if (resolved.enum) return resolved.enum[0];
  const alternative = resolved.oneOf?.[0] ?? resolved.anyOf?.[0];
  if (alternative) return exampleOf(document, alternative, options);
  const [type] = typesOf(document, resolved);
  switch (type) {
    case 'object': {
      const value: Record<string, unknown> = {};
      const required = new Set(resolved.required ?? []);
      for (const [name, property] of Object.entries(resolved.properties ?? {})) {
        const wanted = required.has(name) || (options.optional && resolveSchema(document, property).format !== 'uri');
        if (wanted) value[name] = exampleOf(document, property, options);
      }
      return value;
    }
    case 'array':
      return Array.from({ length: Math.max(1, resolved.minItems ?? 0) }, () => exampleOf(document, resolved.items ?? {}, options));
    case 'string':
      return exampleString(resolved);
    case 'integer':
    case 'number':
      return resolved.exclusiveMinimum !== undefined ? resolved.exclusiveMinimum + 1 : (resolved.minimum ?? 1);
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return resolved.properties ? exampleOf(document, { ...resolved, type: 'object' }, options) : {};
  }
}

/** The named properties of an object schema (following `$ref` and taking the first union alternative). */
export function propertiesOf(document: OpenApiDocument, schema: JsonSchema): Record<string, JsonSchema> {
  const resolved = resolveSchema(document, schema);
  const alternative = resolved.oneOf?.[0] ?? resolved.anyOf?.[0];
  if (alternative) return propertiesOf(document, alternative);
  return resolved.properties ?? {};
}
