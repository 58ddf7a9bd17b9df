import type { Request, Response } from 'express';
import type { RateLimits } from './rate-limits.js';
import { stringifyWithJsonText } from '../lib/json-text.js';

/**
 * `res.status(status).json(body)` without Express's per-call work (settings lookups, charset parsing,
 * a Buffer copy of the body): for the answers every submit sends. The body goes to the socket as one
 * string together with the headers.
 */
export function sendJson(res: Response, status: number, body: unknown): void {
  sendJsonText(res, status, JSON.stringify(body));
}

/** `sendJson` for an answer already serialised (`text`, a JSON document). */
function sendJsonText(res: Response, status: number, text: string, bytes = Buffer.byteLength(text)): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', bytes);
  res.end(text);
}

/** Bytes of a read's answer that its one point of the read budget covers; each further started MiB is one more read. */
const readPointBytes = 1024 * 1024;

/**
 * `sendJson` for a read whose answer may be large (a job with its payload or a megabyte result, a page of them), any
 * JsonText in it written as its text (lib/json-text.ts): an answer of more than `readPointBytes` takes one more point
 * of the caller's read budget per further MiB started, so a customer re-reading megabytes a few hundred times a minute
 * runs out of reads as if it made that many small ones (`rateLimits` null: an administrator's read, held to no budget).
 */
export async function sendReadAnswer(
  rateLimits: Pick<RateLimits, 'chargeReads'> | null,
  req: Request,
  res: Response,
  body: unknown,
): Promise<void> {
  const text = stringifyWithJsonText(body);
  const bytes = Buffer.byteLength(text);
  if (rateLimits && bytes > readPointBytes) await rateLimits.chargeReads(req, Math.ceil(bytes / readPointBytes) - 1);
  sendJsonText(res, 200, text, bytes);
}
