import express, { type RequestHandler } from 'express';
import { hasBody } from './json-content-type.js';
import { malformedJsonProblem, ProblemError } from './problems.js';

/** A JSON body read as text and known to be well-formed, not yet parsed: its route parses it off the event loop. */
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
  /** Whether a text is JSON, decided off the event loop. */
  isJson(text: string): Promise<boolean>;
}

/**
 * Reads a JSON body as `express.json` would — same limit (413), same refusals of a non-UTF charset (415)
 * and of malformed JSON (400), before authentication as there — but leaves `req.body` a JsonText: the
 * syntax check runs off the event loop (`isJson`) and the route parses the text again where it checks it
 * (a 10 MB body took the API's event loop ~100 ms per parse).
 */
export function jsonTextBody(options: JsonTextBodyOptions): RequestHandler {
  const read = express.text({ limit: options.limit, type: options.type, defaultCharset: 'utf-8' });
  return (req, res, next) => {
    const charset = charsetParameter.exec(req.headers['content-type'] ?? '');
    const name = (charset?.[1] ?? charset?.[2] ?? '').toLowerCase();
    if (name && !name.startsWith('utf-') && hasBody(req) && req.is(options.type)) {
      throw new ProblemError('unsupported-media-type', `unsupported charset "${name.toUpperCase()}"`);
    }
    read(req, res, (error?: unknown) => {
      if (error) return next(error);
      if (typeof req.body !== 'string') return next();
      const text: string = req.body;
      options.isJson(text).then((ok) => {
        if (!ok) return next(malformedJsonProblem());
        req.body = new JsonText(text);
        next();
      }, next);
    });
  };
}
