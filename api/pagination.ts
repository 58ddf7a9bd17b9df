import { z } from 'zod';
import type { PageRows } from '../db/page-budget.js';
import { ProblemError } from './problems.js';

/**
 * A whole number in a query string, written in decimal digits only: `z.coerce.number()` alone would also take
 * `0x10`, `1e2`, `+5` or `5.` (whatever `Number()` reads), which a client never means.
 */
export const queryInteger = (min: number, max: number) =>
  z.preprocess(
    (value) => (typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : value),
    z.number().int().min(min).max(max),
  );

/** `?limit=` 1–100 (default 20) and an opaque `?cursor=`. */
export const paginationQuery = {
  limit: queryInteger(1, 100).default(20),
  cursor: z.string().max(512).optional(),
};

/**
 * The most bytes of large JSON (results, payloads, errors) one page of a list of them reads: 4 MiB. A page past it
 * ends early, with fewer than `limit` items and a next_cursor (always at least one item), so that 100 results near
 * RESULT_MAX_BYTES are not ~100 MB read, held and serialised by the API at once.
 */
export const pageMaxBytes = 4 * 1024 * 1024;

/** The bound of a page of `limit` items of a list whose items are large (db/page-budget.ts). */
export const pageBound = (limit: number) => ({ limit, maxBytes: pageMaxBytes });

export const encodeCursor = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Decodes a cursor made by encodeCursor and checks it with `schema`; a forged one is a 400 on `query.cursor`. */
export function decodeCursor<T>(cursor: string | undefined, schema: z.ZodType<T>): T | undefined {
  if (cursor === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    if (parsed.success) return parsed.data;
  } catch {
    // fall through to the 400 below
  }
  throw new ProblemError('validation', 'invalid cursor', { errors: [{ field: 'query.cursor', message: 'not a cursor this API issued' }] });
}

/** A page of `limit` items from `rows` read one past it (`limit + 1`: the extra row says another page follows). */
export function page<Item, Row>(rows: Row[], limit: number, view: (row: Row) => Item, cursorOf: (row: Row) => unknown) {
  return pageOf({ rows: rows.slice(0, limit), more: rows.length > limit }, view, cursorOf);
}

/** A page of the rows a reader cut (db/page-budget.ts): its next_cursor, when more follow, continues after its last row. */
export function pageOf<Item, Row>(found: PageRows<Row>, view: (row: Row) => Item, cursorOf: (row: Row) => unknown) {
  const last = found.rows.at(-1);
  return { items: found.rows.map(view), next_cursor: found.more && last !== undefined ? encodeCursor(cursorOf(last)) : null };
}
