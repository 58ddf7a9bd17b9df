import type { RedisClient } from '../../lib/redis.js';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { sha256 } from '../../lib/crypto.js';

export interface FailedLoginThrottleOptions {
  /** Failed attempts one account may take per window from one address, and from all unknown addresses together. Default 10. */
  maxFailures?: number;
  /** The window in seconds, from the first failure. Default 900 (15 minutes). */
  windowSeconds?: number;
}

/** How long an address an account signed in from stays known to it. */
const knownForSeconds = 30 * 24 * 3600;
/** The most addresses an account keeps known (the latest sign-ins'). */
const maxKnownAddresses = 20;

/**
 * Failed logins per account. `POST /auth/login`, `POST /auth/session` and `POST /admin/login` share the counts
 * (one account, one password). Two counts, each `maxFailures` per window:
 * - per account and address: a guesser at one address is stopped, wherever the account signs in from;
 * - per account, from every address it has not signed in from lately together: a guesser spread over many
 *   addresses is stopped too, the per-IP limits notwithstanding.
 * An address the account signed in from in the last 30 days is known: the second count does not apply to it, so
 * a stranger's failed guesses (another customer's, say) cannot lock the account's owner out where they usually
 * sign in. An attempt takes its points before the password is checked, so parallel guesses cannot slip past the
 * counts; a successful login clears its address's count and makes the address known. Unknown emails are counted
 * like known ones, so a refusal does not tell which accounts exist. Accounts and addresses are keyed by hashes
 * (no emails or addresses in Redis).
 */
export class FailedLoginThrottle {
  private readonly perAddress: RateLimiterRedis;
  private readonly fromUnknownAddresses: RateLimiterRedis;
  /** Failed attempts one account may take per window (each count). */
  readonly maxFailures: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    options: FailedLoginThrottleOptions = {},
  ) {
    this.maxFailures = options.maxFailures ?? 10;
    const limiter = (name: string) =>
      new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: `${prefix}:ratelimit:${name}`,
        points: this.maxFailures,
        duration: options.windowSeconds ?? 900,
      });
    this.perAddress = limiter('login-failures-by-address');
    this.fromUnknownAddresses = limiter('login-failures');
  }

  /**
   * Takes one attempt for `email` from `address`; answers the seconds to wait when a count it falls under is used
   * up, else 0.
   */
  async attempt(email: string, address: string): Promise<number> {
    const account = sha256(email);
    const known = await this.isKnown(account, address);
    const counts = [this.perAddress.consume(`${account}:${sha256(address)}`)];
    if (!known) counts.push(this.fromUnknownAddresses.consume(account));
    let waitMs = 0;
    for (const outcome of await Promise.allSettled(counts)) {
      if (outcome.status === 'fulfilled') continue;
      if (!(outcome.reason instanceof RateLimiterRes)) throw outcome.reason;
      waitMs = Math.max(waitMs, outcome.reason.msBeforeNext);
    }
    return waitMs > 0 ? Math.max(1, Math.ceil(waitMs / 1000)) : 0;
  }

  /**
   * After a successful login from `address`: its failures are forgotten, and the address is known to the account.
   * Coming from an unknown address, the attempt gives back the point it took from their count (it was no failure).
   */
  async succeeded(email: string, address: string): Promise<void> {
    const account = sha256(email);
    const key = this.knownKey(account);
    if (!(await this.isKnown(account, address))) await this.fromUnknownAddresses.reward(account, 1);
    await Promise.all([
      this.perAddress.delete(`${account}:${sha256(address)}`),
      this.redis
        .multi()
        .zadd(key, Date.now(), sha256(address))
        .zremrangebyrank(key, 0, -maxKnownAddresses - 1)
        .expire(key, knownForSeconds)
        .exec(),
    ]);
  }

  private async isKnown(account: string, address: string): Promise<boolean> {
    const since = await this.redis.zscore(this.knownKey(account), sha256(address));
    return since !== null && Date.now() - Number(since) < knownForSeconds * 1000;
  }

  private knownKey(account: string): string {
    return `${this.prefix}:login-known-addresses:${account}`;
  }
}
