import { createHash } from 'node:crypto';
import stringify from 'safe-stable-stringify';

/**
 * What an Idempotency-Key's replay is compared by: the method, path and body of the request that first used the key,
 * hashed, the body's keys sorted (their order is not seen). Pure, so the batch checker's thread can take it of a
 * large body.
 */
export function requestHashOf(method: string, path: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${path} ${stringify(body ?? null)}`)
    .digest('hex');
}
