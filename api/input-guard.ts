import type { RequestHandler } from 'express';
import { unstorableReason } from '../jobs/storable-text.js';
import { ProblemError, shortKey, type FieldError } from './problems.js';

const outOfRange = 'is a number outside the range of a double (JSON numbers must be finite)';

/**
 * How a problem's field is named: `body.jobs.3.payload.x` (`dotted`, every route's way), or
 * `jobs[3].payload.x` (`bracketed`: a bulk submit's items, as SPEC §9 names them; `source` is then the
 * prefix, usually empty).
 */
export type FieldNaming = 'dotted' | 'bracketed';

const fieldOf = (path: string, key: string, inArray: boolean, naming: FieldNaming): string =>
  naming === 'bracketed' && inArray ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`;

/**
 * Why an input key cannot be kept, or null: text PostgreSQL refuses, or `__proto__`. JSON.parse keeps that one
 * as a key, but every object built from the input after it (zod's validated copies, the records routes fill)
 * takes it as the object's prototype instead, so the key and its value silently vanished from metadata and
 * parameters.
 */
function keyProblem(key: string): string | null {
  const reason = unstorableReason(key);
  if (reason) return `key ${reason}`;
  return key === '__proto__' ? 'key __proto__ cannot be kept (JavaScript reads it as an object prototype): use another name' : null;
}

/** Deepest nesting a JSON body may have. Deeper bodies overflow the stack of JSON.stringify and friends. */
export const maxBodyDepth = 64;

/**
 * The first problems in a parsed body or query (at most `limit`): strings or keys PostgreSQL cannot store
 * (text and jsonb refuse NUL, jsonb refuses lone surrogates), numbers past the double range (JSON.parse reads
 * `1e999` as Infinity, which JSON.stringify then writes as null: stored, the value would silently change)
 * and nesting deeper than `maxBodyDepth`. Iterative, so a hostile depth cannot overflow the stack here either.
 */
export function unstorableInput(value: unknown, source: string, limit = 10, naming: FieldNaming = 'dotted'): FieldError[] {
  const errors: FieldError[] = [];
  const stack: Array<[value: unknown, path: string, depth: number]> = [[value, source, 0]];
  while (stack.length > 0 && errors.length < limit) {
    const [current, path, depth] = stack.pop() as [unknown, string, number];
    if (typeof current === 'string') {
      const reason = unstorableReason(current);
      if (reason) errors.push({ field: path, message: reason });
      continue;
    }
    if (typeof current === 'number') {
      if (!Number.isFinite(current)) errors.push({ field: path, message: outOfRange });
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= maxBodyDepth) {
      errors.push({ field: path, message: `nests deeper than ${maxBodyDepth} levels` });
      continue;
    }
    const inArray = Array.isArray(current);
    for (const [key, inner] of Object.entries(current)) {
      // Cut as fieldErrors cuts unknown keys: a 1 MiB key must not come back whole, in the field and again in the detail.
      const innerPath = fieldOf(path, shortKey(key), inArray, naming);
      const problem = keyProblem(key);
      if (problem) errors.push({ field: innerPath, message: problem });
      else stack.push([inner, innerPath, depth + 1]);
    }
  }
  return errors;
}

/**
 * Whether `unstorableInput(value)` finds nothing, decided without building a field path or an entry array
 * for every key (what a clean body, nearly every body, costs). Walks the same values, keys and depths: a
 * string or key PostgreSQL cannot store (or a `__proto__` key), a non-finite number, or an object at `maxBodyDepth`, answers
 * false. Recursive, but never deeper than `maxBodyDepth` frames.
 */
function storable(value: unknown, depth: number): boolean {
  if (typeof value === 'string') return unstorableReason(value) === null;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object' || value === null) return true;
  if (depth >= maxBodyDepth) return false;
  if (Array.isArray(value)) {
    // Object.entries of an array: its present indices, whose keys ("0", "1"…) are always storable.
    for (let i = 0; i < value.length; i++) if (i in value && !storable(value[i], depth + 1)) return false;
    return true;
  }
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (keyProblem(key) !== null || !storable((value as Record<string, unknown>)[key], depth + 1)) return false;
  }
  return true;
}

/**
 * Refuses, with a 400 naming the field, request bodies and query strings that no route could store or
 * serialise: NUL characters, unpaired surrogates, numbers past the double range, nesting past 64 levels, and
 * keys named `__proto__`.
 * Checked once here, after the body parser, rather than in every zod schema, because they break the
 * database driver and JSON.stringify rather than any rule of a route (left alone they surfaced as 500s).
 * Routes in `bodyCheckedByRoute` check their own bodies (with `unstorableInput`, item by item) and are
 * skipped here; routes in `bracketedBodyRoutes` have their body's fields named `bracketed`. Default none.
 */
export function inputGuard(
  options: { bodyCheckedByRoute?: ReadonlySet<string>; bracketedBodyRoutes?: ReadonlySet<string> } = {},
): RequestHandler {
  const bodyCheckedByRoute = options.bodyCheckedByRoute ?? new Set<string>();
  const bracketedBodyRoutes = options.bracketedBodyRoutes ?? new Set<string>();
  return (req, _res, next) => {
    const bodyChecked = bodyCheckedByRoute.has(req.path);
    // Nearly every request is clean: only a refused one builds its list of fields (below).
    if ((bodyChecked || storable(req.body, 0)) && storable(req.query, 0)) return next();
    // A bulk route checks its own items, a slice at a time, rather than hold the event loop for the whole body here.
    const body = bodyChecked
      ? []
      : bracketedBodyRoutes.has(req.path)
        ? unstorableInput(req.body, '', 10, 'bracketed')
        : unstorableInput(req.body, 'body');
    const errors = [...body, ...unstorableInput(req.query, 'query')];
    if (errors.length > 0) {
      throw new ProblemError('validation', `invalid input: ${errors.map((e) => `${e.field} ${e.message}`).join('; ')}`, { errors });
    }
    next();
  };
}
