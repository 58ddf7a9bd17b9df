import type { RedisClient } from '../../lib/redis.js';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { sha256 } from '../../lib/crypto.js';

export interface FailedLoginThrottleOptions {
  /** Failed attempts one account may take per window; the next is refused. Default 10. */
  maxFailures?: number;
  /** The window in seconds, from the first failure. Default 900 (15 minutes). */
  windowSeconds?: number;
}

/**
 * Failed logins per account, from whatever address: the per-IP limits do not stop a guesser spread over
 * many addresses. `POST /auth/login` and `POST /admin/login` share the count (one account, one password).
 * An attempt takes a point before the password is checked — so parallel guesses cannot slip past the
 * count — and a successful login clears it. Unknown emails are counted like known ones, so a refusal
 * does not tell which accounts exist. Accounts are keyed by a hash of the email (no addresses in Redis).
 */
export class FailedLoginThrottle {
  private readonly limiter: RateLimiterRedis;
  /** Failed attempts one account may take per window. */
  readonly maxFailures: number;

  constructor(redis: RedisClient, prefix: string, options: FailedLoginThrottleOptions = {}) {
    this.maxFailures = options.maxFailures ?? 10;
    this.limiter = new RateLimiterRedis({
      storeClient: redis,
      keyPrefix: `${prefix}:ratelimit:login-failures`,
      points: this.maxFailures,
      duration: options.windowSeconds ?? 900,
    });
  }

  /** Takes one attempt for `email`; answers the seconds to wait when its failures are used up, else 0. */
  async attempt(email: string): Promise<number> {
    try {
      await this.limiter.consume(sha256(email));
      return 0;
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      return Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
    }
  }

  /** After a successful login: the account's failures are forgotten. */
  async succeeded(email: string): Promise<void> {
    await this.limiter.delete(sha256(email));
  }
}
