import { PermanentJobError } from './errors.js';

/** The error code a too-large result fails its job (or batch item) with: the first word of its message. */
export const resultTooLargeCode = 'result_too_large';

/** The most RESULT_MAX_BYTES may be set to (config.ts, which imports nothing of ours, says it again); no evaluation thread hands back a result past it. */
export const resultMaxBytesCeiling = 64 * 1024 * 1024;

/** A job's (or a batch item's) result is bigger than RESULT_MAX_BYTES: it fails, never to be retried. */
export class ResultTooLargeError extends PermanentJobError {
  override name = 'ResultTooLargeError';
  constructor(
    readonly bytes: number,
    readonly limitBytes: number,
    /** `bytes` is a lower bound (a result too big to be worth measuring exactly). */
    atLeast = false,
  ) {
    super(
      `${resultTooLargeCode}: the result is ${atLeast ? 'at least ' : ''}${bytes} bytes of JSON, over the RESULT_MAX_BYTES limit of ${limitBytes} bytes`,
    );
  }
}

/**
 * The size of `value` as stored (its JSON, in UTF-8 bytes) when it is over `limitBytes`; null when it fits
 * (a result against RESULT_MAX_BYTES, a payload against what a BullMQ job carries inline).
 * A string's length is a lower bound of its UTF-8 size and at most a third of it, so most results are
 * decided without encoding them.
 */
export function oversizedJsonBytes(value: unknown, limitBytes: number): number | null {
  if (value === undefined || value === null || typeof value === 'number' || typeof value === 'boolean') return null;
  const json = JSON.stringify(value);
  if (json === undefined) return null;
  if (json.length * 3 <= limitBytes) return null;
  if (json.length > limitBytes) return Buffer.byteLength(json);
  const bytes = Buffer.byteLength(json);
  return bytes > limitBytes ? bytes : null;
}

/**
 * At least how many characters `value`'s JSON has (its strings' and keys' characters, one for any other
 * value), counted no further than past `stopAfter`: enough to tell that a value is over a limit without
 * encoding all of it.
 */
export function jsonCharactersAtLeast(value: unknown, stopAfter: number): number {
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && count <= stopAfter) {
    const next = stack.pop();
    if (typeof next === 'string') count += next.length;
    else if (Array.isArray(next)) {
      count += 1;
      for (let i = 0; i < next.length && i <= stopAfter; i++) stack.push(next[i]);
    } else if (typeof next === 'object' && next !== null) {
      // An object that says how it is encoded (a Date, a Buffer): no bound from its fields; the encoder decides.
      if (typeof (next as { toJSON?: unknown }).toJSON === 'function') return 0;
      count += 1;
      for (const key of Object.keys(next)) {
        const item = (next as Record<string, unknown>)[key];
        // JSON leaves out a key whose value is undefined, a function or a symbol.
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
        count += key.length;
        stack.push(item);
      }
    } else if (typeof next !== 'undefined' && typeof next !== 'function' && typeof next !== 'symbol') count += 1;
  }
  return count;
}

/**
 * Whether `value`'s JSON fits in `limitBytes` (UTF-8). A value far over the limit (a 15 MB batch payload
 * against the 8 KiB a BullMQ job carries inline) is told by walking it only until the limit is passed, not by
 * encoding all of it.
 */
export function fitsJsonBytes(value: unknown, limitBytes: number): boolean {
  if (typeof value === 'object' && value !== null && jsonCharactersAtLeast(value, limitBytes) > limitBytes) return false;
  return oversizedJsonBytes(value, limitBytes) === null;
}

/** The size of `value` as stored: its JSON, in UTF-8 bytes (0 for undefined). */
export function jsonBytes(value: unknown): number {
  const json = JSON.stringify(value);
  if (json === undefined) return 0;
  return typeof value === 'object' || typeof value === 'string' ? Buffer.byteLength(json) : json.length;
}

/** Throws ResultTooLargeError when `value` is over `limitBytes`. */
export function assertResultFits(value: unknown, limitBytes: number): void {
  const bytes = oversizedJsonBytes(value, limitBytes);
  if (bytes !== null) throw new ResultTooLargeError(bytes, limitBytes);
}
