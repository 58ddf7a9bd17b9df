import iconv from 'iconv-lite';
import { isUtf8 } from 'node:buffer';
import { invalidUtf8Problem, invalidUtf8Type } from './problems.js';

/** A JSON body as it crosses to a worker thread: its bytes (transferred when they own their memory) and charset. */
export interface JsonBody {
  bytes: Uint8Array;
  charset: string;
}

/**
 * Whether `bytes`, declared in `charset`, are UTF-8 that is not valid: decoding would replace the bad
 * sequences with U+FFFD, and the request would go on with text its sender never sent.
 */
export const isInvalidUtf8 = (bytes: Uint8Array, charset: string): boolean => (charset === 'utf-8' || charset === 'utf8') && !isUtf8(bytes);

/** body-parser's `verify` hook: refuses a UTF-8 body whose bytes are not UTF-8 (`invalidUtf8Problem`, a 400). */
export function refuseInvalidUtf8(_req: unknown, _res: unknown, bytes: Buffer, charset: string | null): void {
  if (charset !== null && isInvalidUtf8(bytes, charset))
    throw Object.assign(new Error('request body is not valid UTF-8'), { type: invalidUtf8Type });
}

/**
 * The text of a JSON body as body-parser decodes it: its charset, a leading byte order mark dropped. Throws
 * `invalidUtf8Problem` for bytes that are not the UTF-8 they are declared to be.
 */
export function decodeJsonBody(body: JsonBody): string {
  const bytes = Buffer.from(body.bytes.buffer, body.bytes.byteOffset, body.bytes.byteLength);
  if (isInvalidUtf8(bytes, body.charset)) throw invalidUtf8Problem();
  return iconv.decode(bytes, body.charset);
}

/**
 * The memory to transfer with `body` to a thread (rather than copy): its bytes' ArrayBuffer when they alone
 * use it, as a large body's do (a small one may share a pooled buffer, and is copied).
 */
export function transferableOf(body: JsonBody | null): ArrayBuffer[] {
  if (body === null) return [];
  const { buffer, byteOffset, byteLength } = body.bytes;
  return buffer instanceof ArrayBuffer && byteOffset === 0 && byteLength === buffer.byteLength ? [buffer] : [];
}
