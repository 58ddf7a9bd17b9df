import type { Request, RequestHandler, Response } from 'express';
import { ProblemError } from '../problems.js';
import { constantTimeEqualHex, sha256 } from '../../lib/crypto.js';
import { apiKeyPattern, verifyAccessToken } from './credentials.js';
import { assertNotCrossSite, type ConsoleSessions } from './console-sessions.js';
import { whenReady, type MaybePromise, type Principal, type PrincipalCache } from './principal.js';

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

const unauthorized = (detail: string) => new ProblemError('unauthorized', detail, { headers: { 'WWW-Authenticate': 'Bearer' } });

export interface AuthenticateOptions {
  jwtSecret: string;
  tosVersion: string;
  principals: PrincipalCache;
  /** Skip the TOS gate (for /auth/me and /tos/accept). Default false: users and API keys alike answer 403 `tos-required`. */
  allowWithoutTos?: boolean;
  /** Accept the console's session cookie when there is no Authorization header. Default: bearer only. */
  sessions?: ConsoleSessions;
  /**
   * Before an API key is looked up in the database (no answer for it cached): spends the client's budget of such
   * lookups, and throws (the 429) past it. Default: no budget.
   */
  keyLookup?: (req: Request, res: Response) => Promise<void>;
}

/**
 * `Authorization: Bearer <JWT | sk_live_… key>`. No bcrypt and, after the first call, no database read:
 * principals come from the PrincipalCache — synchronously when cached, so most requests pay no promise.
 * Without an Authorization header, the console's session cookie (when `sessions` is given): one Redis
 * read, then the user's principal as for a JWT; a state-changing request must also pass the CSRF check
 * (403). A request with both is judged by its bearer token alone.
 */
export function authenticate(options: AuthenticateOptions): RequestHandler {
  const { sessions } = options;
  return (req, res, next) => {
    const header = req.headers.authorization;
    const sessionId = header === undefined && sessions ? sessions.idOf(req) : null;
    if (sessionId && sessions) {
      assertNotCrossSite(req);
      // A shared cache must not keep an answer a cookie chose (it may keep none that a bearer header chose, RFC 9111 §3.5).
      res.setHeader('Cache-Control', 'private, no-store');
      return sessions
        .find(sessionId)
        .then((session) =>
          session
            ? whenReady(options.principals.byUserId(session.userId), (principal) =>
                admit(principal && principal.customerId === session.customerId ? principal : null),
              )
            : admit(null),
        );
    }
    const token = bearerTokenOf(header);
    if (!token) throw unauthorized('missing bearer token');
    const { keyLookup } = options;
    const mayLookUp = keyLookup && (() => keyLookup(req, res).then(() => true));
    return whenReady(principalOfToken(options, token, mayLookUp), admit);

    function admit(principal: Principal | null): void {
      if (!principal) throw unauthorized('invalid, expired or revoked credentials');
      if (!options.allowWithoutTos && principal.acceptedTosVersion !== options.tosVersion) {
        // Known but not admitted: the request log still records the call against its customer.
        awaitingTerms.set(req, principal);
        throw new ProblemError('tos-required', `accept the terms of service version ${options.tosVersion} with POST /api/v1/tos/accept`, {
          tos_version: options.tosVersion,
        });
      }
      req.principal = principal;
      next();
    }
  };
}

/** What `principalOfToken` needs: the JWT secret and the principal cache. */
export type TokenCredentials = Pick<AuthenticateOptions, 'jwtSecret' | 'principals'>;

/** What `principalOfBearer` needs: `TokenCredentials`, and whether a request may look up a key not cached (its client's budget). */
export interface BearerCredentials extends TokenCredentials {
  keyLookupAllowed?: (req: Request) => Promise<boolean>;
}

/** The token of `Authorization: Bearer <token>`, else null. */
function bearerTokenOf(header: string | undefined): string | null {
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1] ?? null;
}

/**
 * The principal of a JWT access token or an API key, or null when the token is invalid, expired or revoked;
 * from the principal cache (no bcrypt, a database read only on a miss), without the TOS check. An API key the cache
 * has no answer for is looked up only if `mayLookUp` (the client's budget of such lookups) allows it; else null.
 */
function principalOfToken(
  credentials: TokenCredentials,
  token: string,
  mayLookUp?: () => Promise<boolean>,
): MaybePromise<Principal | null> {
  if (apiKeyPattern.test(token)) {
    const hash = sha256(token);
    const ofKey = () =>
      whenReady(credentials.principals.byApiKeyHash(hash), (principal) =>
        principal && constantTimeEqualHex(principal.keyHash, hash) ? principal : null,
      );
    if (mayLookUp && !credentials.principals.knowsApiKey(hash)) return mayLookUp().then((allowed) => (allowed ? ofKey() : null));
    return ofKey();
  }
  const claims = verifyAccessToken(credentials.jwtSecret, token);
  if (!claims) return null;
  return whenReady(credentials.principals.byUserId(claims.sub), (principal) =>
    principal && principal.customerId === claims.cid ? principal : null,
  );
}

/**
 * The principal of an `Authorization: Bearer` header, as `authenticate` would resolve it but without the TOS
 * check, or null (no header, or invalid credentials). For the request log, to attribute a call that ended
 * before its route authenticated it (a 400, 413, 415 or 404 from the body stage or an unknown path).
 */
export function principalOfBearer(credentials: BearerCredentials, req: Request): MaybePromise<Principal | null> {
  const token = bearerTokenOf(req.headers.authorization);
  // Past its client's budget, a key not cached attributes the call to no one.
  const { keyLookupAllowed } = credentials;
  return token ? principalOfToken(credentials, token, keyLookupAllowed && (() => keyLookupAllowed(req))) : null;
}

/** Requests refused 403 `tos-required`: their principal, which `authenticate` does not set on `req.principal`. */
const awaitingTerms = new WeakMap<Request, Principal>();

/**
 * The principal of a request that `authenticate` refused only for want of the current terms of service,
 * else undefined. Never a sign of admission: nothing but the request log reads it.
 */
export function principalAwaitingTerms(req: Request): Principal | undefined {
  return awaitingTerms.get(req);
}

/** After authenticate: the principal, or a 401 if a route forgot authenticate. */
export function principalOf(req: { principal?: Principal }): Principal {
  if (!req.principal) throw unauthorized('authentication required');
  return req.principal;
}

export const requireAdmin: RequestHandler = (req, _res, next) => {
  if (principalOf(req).role !== 'admin') throw new ProblemError('forbidden', 'this route is for administrators');
  next();
};

/** Calls to a suspended or disabled service answer 402: throws that problem unless the principal's service is active. */
export function assertActiveService(principal: Principal): void {
  if (principal.blockedReason) {
    throw new ProblemError('payment-required', `the ${principal.serviceType} service is suspended (${principal.blockedReason})`, {
      reason: principal.blockedReason,
      service_type: principal.serviceType,
    });
  }
}
