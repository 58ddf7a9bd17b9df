import { z } from 'zod';
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

export function page<Item, Row>(rows: Row[], limit: number, view: (row: Row) => Item, cursorOf: (row: Row) => unknown) {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items: items.map(view), next_cursor: rows.length > limit && last !== undefined ? encodeCursor(cursorOf(last)) : null };
}
