import type { IncomingMessage } from 'node:http';
import { ProblemError } from './problems.js';

/** `application/json`, with or without parameters such as a charset; not a structured `+json` type (SPEC §9). */
const jsonContentType = /^application\/json[\t ]*(?:;|$)/i;

/** Whether the request carries body bytes: a non-zero length, or a chunked body (whose length is unknown). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length.trim() !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * Throws a 415 naming application/json when `req` carries a body of another (or no) declared type. An empty
 * body passes whatever its type, so routes that take no body (divide, pause, rotate) accept `curl -X POST`.
 */
export function refuseBodyUnlessJson(req: IncomingMessage): void {
  const contentType = req.headers['content-type'];
  if ((contentType !== undefined && jsonContentType.test(contentType)) || !hasBody(req)) return;
  const got = contentType ? `Content-Type ${contentType.slice(0, 100)}` : 'no Content-Type';
  throw new ProblemError('unsupported-media-type', `this route takes a JSON body: send it as Content-Type: application/json (got ${got})`, {
    errors: [{ field: 'header.content-type', message: 'must be application/json' }],
  });
}
