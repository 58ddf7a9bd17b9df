import { expect } from 'vitest';
import type { HttpResponse } from '../helpers/http.js';

/** Asserts an RFC 9457 answer: status, content type, `type` ending in `/<type>`, and (optionally) the fields named. */
export function expectProblem(response: HttpResponse, status: number, type: string, fields: string[] = []): void {
  expect(response.status, response.text).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.body).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
  expect(response.body.type).toMatch(new RegExp(`/${type}$`));
  const named = ((response.body.errors ?? []) as Array<{ field: string }>).flatMap((error) => error.field.split(', '));
  for (const field of fields) expect(named).toContain(field);
}

/** The claims of a JWT, unverified (tests only). */
export function jwtClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
}
