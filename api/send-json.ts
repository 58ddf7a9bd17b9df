import type { Response } from 'express';

/**
 * `res.status(status).json(body)` without Express's per-call work (settings lookups, charset parsing,
 * a Buffer copy of the body): for the answers every submit sends. The body goes to the socket as one
 * string together with the headers.
 */
export function sendJson(res: Response, status: number, body: unknown): void {
  sendJsonText(res, status, JSON.stringify(body));
}

/** `sendJson` for an answer already serialised (`text`, a JSON document). */
export function sendJsonText(res: Response, status: number, text: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/**
 * `{...view, payload}` as JSON text, the payload spliced in as PostgreSQL's JSON text of it (null when the row has
 * none): a payload of megabytes is neither parsed nor serialised again on the event loop.
 */
export function withPayloadText(view: object, payloadText: string | null): string {
  const head = JSON.stringify(view);
  return `${head.slice(0, -1)}${head === '{}' ? '' : ','}"payload":${payloadText ?? 'null'}}`;
}
