import type { CookieOptions, Request, Response } from 'express';
import type { RedisClient } from '../../lib/redis.js';
import { createHash, randomBytes } from 'node:crypto';
import { parse as parseCookie } from 'cookie';

export interface CookieSessionsOptions {
  /** The cookie's name. */
  cookieName: string;
  /** The cookie's Path: the browser sends it only below this path. */
  cookiePath: string;
  /** Names the Redis keys: `<prefix>:<kind>:<sha256 of the id>`. */
  kind: string;
  /** Session lifetime in seconds, from sign-in (not sliding). Default 8 hours. */
  ttlSeconds?: number;
  /** Adds `Secure` to every cookie (production). Default false; a request that came over HTTPS gets it either way. */
  secureCookie?: boolean;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
/** 32 random bytes, base64url: what `start` issues. Anything else is no session, without a Redis read. */
export const sessionIdPattern = /^[A-Za-z0-9_-]{43}$/;

/**
 * Sessions held by a random opaque id in an httpOnly, SameSite=Strict cookie; Redis maps the id
 * (hashed, so a leaked Redis dump holds no usable cookie) to what the session stands for, with a TTL.
 * Checking a request costs one Redis GET. The cookie never carries a token or anything readable: ending
 * a session deletes its key, and the same cookie then opens nothing. Used by the Bull Board login
 * (`/admin`) and the console (`/api/v1`).
 */
export class CookieSessions<Session> {
  readonly ttlSeconds: number;
  readonly cookieName: string;
  private readonly secureCookie: boolean;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly options: CookieSessionsOptions,
  ) {
    this.ttlSeconds = options.ttlSeconds ?? 8 * 3600;
    this.cookieName = options.cookieName;
    this.secureCookie = options.secureCookie ?? false;
  }

  private key(sessionId: string): string {
    return `${this.prefix}:${this.options.kind}:${sha256(sessionId)}`;
  }

  /**
   * Stores a new session and sets its cookie on `res`. Call only once the credentials are verified. A
   * session the request still carries ends: signing in again replaces it rather than leaving it live.
   */
  async start(req: Request, res: Response, session: Session): Promise<void> {
    const previous = this.idOf(req);
    if (previous) await this.redis.del(this.key(previous));
    const sessionId = randomBytes(32).toString('base64url');
    await this.redis.set(this.key(sessionId), JSON.stringify(session), 'EX', this.ttlSeconds);
    res.cookie(this.cookieName, sessionId, { ...this.cookieOptions(req), maxAge: this.ttlSeconds * 1000 });
  }

  /** The id the request's cookie carries, when it has the shape of one. */
  idOf(req: Request): string | null {
    const sessionId = readCookie(req, this.cookieName);
    return sessionId && sessionIdPattern.test(sessionId) ? sessionId : null;
  }

  /** The session named by `sessionId`, or null (expired or ended). */
  async find(sessionId: string): Promise<Session | null> {
    const stored = await this.redis.get(this.key(sessionId));
    return stored ? (JSON.parse(stored) as Session) : null;
  }

  /** The session named by the request's cookie, or null (no cookie, malformed, expired or ended). */
  async current(req: Request): Promise<Session | null> {
    const sessionId = this.idOf(req);
    return sessionId ? this.find(sessionId) : null;
  }

  /** Deletes the request's session (if any) in Redis and clears the cookie. */
  async end(req: Request, res: Response): Promise<void> {
    const sessionId = this.idOf(req);
    if (sessionId) await this.redis.del(this.key(sessionId));
    res.clearCookie(this.cookieName, this.cookieOptions(req));
  }

  private cookieOptions(req: Request): CookieOptions {
    // `req.secure` follows X-Forwarded-Proto only behind a trusted proxy (TRUST_PROXY).
    return { httpOnly: true, sameSite: 'strict', secure: this.secureCookie || req.secure, path: this.options.cookiePath };
  }
}

/** One cookie from the Cookie header (`cookie`'s parser; a malformed escape stays undecoded, so it is no session). */
export function readCookie(req: Request, name: string): string | undefined {
  return parseCookie(req.headers.cookie ?? '')[name];
}
