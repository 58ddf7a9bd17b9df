import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../../api/openapi.js';

/**
 * Every operation of the document shows a real request and answer in /docs (issue 20): a JSON request body
 * without an example, or a 2xx JSON answer without one, fails here, and so does an example its own schema
 * refuses. Examples are validated with the document's JSON Schemas (OpenAPI 3.1 is JSON Schema 2020-12).
 */

const httpMethods = ['get', 'put', 'post', 'delete', 'patch'];

interface MediaType {
  schema?: unknown;
  example?: unknown;
}
interface Operation {
  requestBody?: { content?: Record<string, MediaType> };
  responses?: Record<string, { content?: Record<string, MediaType> }>;
}

const document = buildOpenApiDocument();

/** `METHOD path (where)` and the media type, for each JSON body the document describes. */
function jsonMedia(): { where: string; media: MediaType; required: boolean }[] {
  const found: { where: string; media: MediaType; required: boolean }[] = [];
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const [method, value] of Object.entries(item ?? {})) {
      if (!httpMethods.includes(method)) continue;
      const operation = value as Operation;
      const request = operation.requestBody?.content?.['application/json'];
      if (request) found.push({ where: `${method.toUpperCase()} ${path} request`, media: request, required: true });
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const media = response.content?.['application/json'];
        if (media) found.push({ where: `${method.toUpperCase()} ${path} ${status}`, media, required: status.startsWith('2') });
      }
    }
  }
  return found;
}

function validator() {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  // Each component under its own id, so `#/components/schemas/X` resolves from any example's schema.
  ajv.addSchema({ $id: 'doc', components: document.components }, 'doc');
  return (schema: unknown, value: unknown) => {
    const rewritten = JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/')) as object;
    const validate = ajv.compile(rewritten);
    return validate(value) ? null : ajv.errorsText(validate.errors);
  };
}

describe('examples in the OpenAPI document', () => {
  it('covers every JSON request body and every 2xx JSON answer of every operation', () => {
    const media = jsonMedia();
    expect(media.length).toBeGreaterThan(100);
    const missing = media.filter(({ media, required }) => required && media.example === undefined).map(({ where }) => where);
    expect(missing).toEqual([]);
  });

  it('gives examples that their own schema accepts', () => {
    const check = validator();
    const failures = jsonMedia()
      .filter(({ media }) => media.example !== undefined)
      .map(({ where, media }) => ({ where, error: check(media.schema, media.example) }))
      .filter(({ error }) => error !== null);
    expect(failures).toEqual([]);
  });

  it('refuses an example that breaks its schema (the check is not vacuous)', () => {
    const check = validator();
    const submit = (document.paths?.['/jobs']?.post as Operation).responses?.['202']?.content?.['application/json'];
    expect(check(submit?.schema, submit?.example)).toBeNull();
    expect(check(submit?.schema, { ...(submit?.example as object), state: 'sideways' })).toMatch(/state/);
    expect(check(submit?.schema, { ...(submit?.example as object), id: 'not-a-uuid' })).toMatch(/uuid/);
  });
});
