import express, { type Request, type RequestHandler } from 'express';
import { earlyRefusalOf } from './auth/early-authentication.js';
import { hasBody } from './json-content-type.js';
import { malformedJsonProblem, ProblemError } from './problems.js';

/**
 * A JSON body read as text, neither parsed nor checked: its route parses it off the event loop, where a
 * malformed one answers the same 400 the JSON parser gave.
 */
export class JsonText {
  constructor(readonly text: string) {}
}

/** The body of `req.body` as JSON text: a JsonText's own, null for no body, else the parsed value serialised. */
export function jsonTextOf(body: unknown): string | null {
  if (body instanceof JsonText) return body.text;
  return body === undefined ? null : JSON.stringify(body);
}

const charsetParameter = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i;

export interface JsonTextBodyOptions {
  /** Largest body, as body-parser reads it (`16mb`). */
  limit: string;
  /** Content types taken as JSON. */
  type: string[];
}

/** Throws the 415 `express.json` gives a JSON body declared in a charset other than UTF-8, -16 or -32. */
function refuseNonUtfCharset(req: Request, type: string[]): void {
  const charset = charsetParameter.exec(req.headers['content-type'] ?? '');
  const name = (charset?.[1] ?? charset?.[2] ?? '').toLowerCase();
  if (name && !name.startsWith('utf-') && hasBody(req) && req.is(type)) {
    throw new ProblemError('unsupported-media-type', `unsupported charset "${name.toUpperCase()}"`);
  }
}

/**
 * Reads a JSON body as `express.json` would — same limit (413), same refusal of a non-UTF charset (415) —
 * but leaves `req.body` a JsonText, unparsed (a 10 MB body took the API's event loop ~100 ms per parse):
 * the route parses and checks it off the event loop, malformed JSON included (400).
 */
export function jsonTextBody(options: JsonTextBodyOptions): RequestHandler {
  const read = express.text({ limit: options.limit, type: options.type, defaultCharset: 'utf-8' });
  return (req, res, next) => {
    refuseNonUtfCharset(req, options.type);
    read(req, res, (error?: unknown) => {
      if (error) return next(error);
      if (typeof req.body === 'string') req.body = new JsonText(req.body);
      next();
    });
  };
}

/** A place to read and check one body sent without valid credentials (SubstrateBatchChecker.anonymousCheck). */
export interface AnonymousCheck {
  /** Whether `text` is JSON, decided off the event loop; gives the place back once decided. */
  isJson(text: string): Promise<boolean>;
  /** Gives the place back unchecked (the body could not be read). */
  release(): void;
}

export interface AnonymousJsonBodyOptions extends JsonTextBodyOptions {
  /** A place to read and check a body, or null, at once, when all are taken. */
  anonymousCheck(): AnonymousCheck | null;
}

/**
 * The body stage of a large-body route for a request `authenticateEarly` refused (no, bogus or expired
 * credentials; terms not accepted). Such a request gets its refusal whatever its body, so its body is only
 * read (413, 415) and its syntax checked off the event loop for the 400 the JSON parser gave: never parsed
 * on the event loop, never walked by the input guard, never checked twice. The reading and the check hold
 * one of a few places (`anonymousCheck`); when none is free the request is answered its refusal at once,
 * its body neither read nor checked: a request without valid credentials may always get its 401.
 */
export function anonymousJsonBody(options: AnonymousJsonBodyOptions): RequestHandler {
  const read = jsonTextBody(options);
  return (req, res, next) => {
    // No JSON body: nothing to check; the route's authenticate step answers, as for any request.
    if (!hasBody(req) || !req.is(options.type)) return read(req, res, next);
    refuseNonUtfCharset(req, options.type);
    const refusal = earlyRefusalOf(req);
    const check = options.anonymousCheck();
    if (!check) return next(refusal);
    read(req, res, (error?: unknown) => {
      if (error || !(req.body instanceof JsonText)) {
        check.release();
        return next(error);
      }
      const { text } = req.body;
      req.body = undefined;
      check.isJson(text).then((ok) => next(ok ? refusal : malformedJsonProblem()), next);
    });
  };
}
