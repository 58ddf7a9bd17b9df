import type { Response } from 'express';

/**
 * `res.status(status).json(body)` without Express's per-call work (settings lookups, charset parsing,
 * a Buffer copy of the body): for the answers every submit sends. The body goes to the socket as one
 * string together with the headers.
 */
export function sendJson(res: Response, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
