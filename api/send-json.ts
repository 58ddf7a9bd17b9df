import type { Response } from 'express';
import { stringifyWithJsonText } from '../lib/json-text.js';

/**
 * `res.status(status).json(body)` without Express's per-call work (settings lookups, charset parsing,
 * a Buffer copy of the body): for the answers every submit sends. The body goes to the socket as one
 * string together with the headers. A JsonText in it (a result read as text) is written as its text.
 */
export function sendJson(res: Response, status: number, body: unknown): void {
  sendJsonText(res, status, stringifyWithJsonText(body));
}

/** `sendJson` for an answer already serialised (`text`, a JSON document). */
export function sendJsonText(res: Response, status: number, text: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
