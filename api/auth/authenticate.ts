import type { RequestHandler } from 'express';
import { ProblemError } from '../problems.js';
import { constantTimeEqualHex, sha256 } from '../../lib/crypto.js';
import { apiKeyPattern, verifyAccessToken } from './credentials.js';
import { assertNotCrossSite, type ConsoleSessions } from './console-sessions.js';
import { whenReady, type Principal, type PrincipalCache } from './principal.js';

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
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match?.[1]) throw unauthorized('missing bearer token');
    const token = match[1];
    if (apiKeyPattern.test(token)) {
      const hash = sha256(token);
      return whenReady(options.principals.byApiKeyHash(hash), (principal) =>
        admit(principal && constantTimeEqualHex(principal.keyHash, hash) ? principal : null),
      );
    }
    const claims = verifyAccessToken(options.jwtSecret, token);
    if (!claims) return admit(null);
    return whenReady(options.principals.byUserId(claims.sub), (principal) =>
      admit(principal && principal.customerId === claims.cid ? principal : null),
    );

    function admit(principal: Principal | null): void {
      if (!principal) throw unauthorized('invalid, expired or revoked credentials');
      if (!options.allowWithoutTos && principal.acceptedTosVersion !== options.tosVersion) {
        throw new ProblemError('tos-required', `accept the terms of service version ${options.tosVersion} with POST /api/v1/tos/accept`, {
          tos_version: options.tosVersion,
        });
      }
      req.principal = principal;
      next();
    }
  };
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
