import express, { type Request, type RequestHandler } from 'express';
import iconv from 'iconv-lite';
import type { JsonBody } from './json-body.js';
import { earlyRefusalOf } from './auth/early-authentication.js';
import { hasBody } from './json-content-type.js';
import { malformedJsonProblem, ProblemError } from './problems.js';

/**
 * A JSON body as it was sent, in bytes and its charset: neither decoded, parsed nor checked. Its route
 * decodes and parses it off the event loop (`decodeJsonBody`), where a malformed one answers the same 400
 * the JSON parser gave. The bytes stay bytes on the event loop: decoding a 10 MB body there built it chunk
 * by chunk as strings that the collector then copied between generations (issue 15: the API's pauses under
 * parallel 10 MB batches were mostly collection).
 */
export class JsonBytes implements JsonBody {
  constructor(
    readonly bytes: Uint8Array,
    /** The declared charset, lower case; `utf-8` when none was. */
    readonly charset: string,
  ) {}
}

/**
 * The body of `req.body` for a thread: a JsonBytes, or null for none. A route read by `jsonTextBody` has
 * nothing else: a JSON type is read as bytes, any other body was refused with 415 before.
 */
export function jsonBodyOf(body: unknown): JsonBody | null {
  return body instanceof JsonBytes ? body : null;
}

const charsetParameter = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i;

/** The charset a request declares, lower case, or `utf-8`. */
function charsetOf(req: Request): string {
  const charset = charsetParameter.exec(req.headers['content-type'] ?? '');
  return (charset?.[1] ?? charset?.[2] ?? '').toLowerCase() || 'utf-8';
}

export interface JsonTextBodyOptions {
  /** Largest body, as body-parser reads it (`16mb`). */
  limit: string;
  /** Content types taken as JSON. */
  type: string[];
}

/**
 * Throws the 415 `express.json` gives a JSON body declared in a charset other than UTF-8, -16 or -32, or in
 * one body-parser's decoder does not know.
 */
function refuseNonUtfCharset(req: Request, type: string[]): void {
  const name = charsetOf(req);
  if ((!name.startsWith('utf-') || !iconv.encodingExists(name)) && hasBody(req) && req.is(type)) {
    const message = `unsupported charset "${name.toUpperCase()}"`;
    throw new ProblemError('unsupported-media-type', message, { errors: [{ field: 'header.content-type', message }] });
  }
}

/**
 * Reads a JSON body as `express.json` would — same limit (413), same inflation, same refusal of a non-UTF
 * charset (415) — but leaves `req.body` a JsonBytes, undecoded and unparsed (a 10 MB body took the API's
 * event loop ~100 ms per parse): the route decodes, parses and checks it off the event loop, malformed JSON
 * included (400).
 */
export function jsonTextBody(options: JsonTextBodyOptions): RequestHandler {
  const read = express.raw({ limit: options.limit, type: options.type });
  return (req, res, next) => {
    refuseNonUtfCharset(req, options.type);
    read(req, res, (error?: unknown) => {
      if (error) return next(error);
      if (Buffer.isBuffer(req.body)) req.body = new JsonBytes(req.body, charsetOf(req));
      next();
    });
  };
}

/** A place to read and check one body sent without valid credentials (SubstrateBatchChecker.anonymousCheck). */
export interface AnonymousCheck {
  /** Whether `body` is JSON, decided off the event loop; gives the place back once decided. */
  isJson(body: JsonBody): Promise<boolean>;
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
      const body = jsonBodyOf(req.body);
      if (error || body === null) {
        check.release();
        return next(error);
      }
      req.body = undefined;
      check.isJson(body).then((ok) => next(ok ? refusal : malformedJsonProblem()), next);
    });
  };
}
