import iconv from 'iconv-lite';

/** A JSON body as it crosses to a worker thread: its bytes (transferred when they own their memory) and charset. */
export interface JsonBody {
  bytes: Uint8Array;
  charset: string;
}

/** The text of a JSON body as body-parser decodes it: its charset, a leading byte order mark dropped. */
export function decodeJsonBody(body: JsonBody): string {
  const bytes = Buffer.from(body.bytes.buffer, body.bytes.byteOffset, body.bytes.byteLength);
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
