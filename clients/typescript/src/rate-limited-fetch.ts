import { parseRetryAfter } from './problem.js';
import { sleep } from './sleep.js';

export interface RateLimitOptions {
  /** How many 429 answers in a row one call waits out before giving the 429 to the caller. Default 5; 0 never waits. */
  maxWaits?: number;
  /** The longest single wait, in ms; a longer `Retry-After` is answered to the caller at once. Default 60,000. */
  maxWaitMs?: number;
  /** Called before each wait (the CLI says so on stderr). */
  onWait?: (waitMs: number, request: Request) => void;
}

/**
 * Wraps fetch so that a 429 with `Retry-After` is waited out and the request sent again (its body is cloned
 * before the first try). Waits are bounded in count and length; past them the 429 goes back to the caller.
 */
export function rateLimitedFetch(inner: typeof fetch, options: RateLimitOptions = {}) {
  const maxWaits = options.maxWaits ?? 5;
  const maxWaitMs = options.maxWaitMs ?? 60_000;
  return async (request: Request, init?: RequestInit): Promise<Response> => {
    for (let waits = 0; ; waits++) {
      const response = await inner(waits < maxWaits ? request.clone() : request, init);
      if (response.status !== 429 || waits >= maxWaits) return response;
      const seconds = parseRetryAfter(response.headers.get('retry-after'));
      // A 429 with no Retry-After says nothing about when to come back; the caller decides.
      if (seconds === null || seconds * 1000 > maxWaitMs) return response;
      // Jitter spreads clients that were told the same second.
      const waitMs = seconds * 1000 + Math.floor(Math.random() * 250);
      options.onWait?.(waitMs, request);
      await response.body?.cancel();
      await sleep(waitMs, request.signal);
    }
  };
}
