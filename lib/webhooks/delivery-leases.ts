import { createHash } from 'node:crypto';
import type { RedisClient } from '../redis.js';

/**
 * Takes a lease for one delivery on its endpoint and its customer, or none. KEYS[1] the endpoint's lease
 * zset, KEYS[2] the customer's; ARGV[1] the delivery, ARGV[2] lease ms, ARGV[3] endpoint cap, ARGV[4]
 * customer cap. Members are scored by expiry (Redis's clock), so a lease whose worker died lapses by itself.
 * Returns 1 (taken), -1 (endpoint at its cap), -2 (customer at its cap).
 */
const acquireScript = `local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
redis.call('zremrangebyscore', KEYS[2], '-inf', now)
local held = redis.call('zscore', KEYS[1], ARGV[1])
if not held then
  if redis.call('zcard', KEYS[2]) >= tonumber(ARGV[4]) then return -2 end
  if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
end
local expires = now + tonumber(ARGV[2])
redis.call('zadd', KEYS[1], expires, ARGV[1])
redis.call('zadd', KEYS[2], expires, ARGV[1])
redis.call('pexpire', KEYS[1], ARGV[2])
redis.call('pexpire', KEYS[2], ARGV[2])
return 1`;

export type LeaseRefusal = 'endpoint' | 'customer';

/** Where a delivery goes, for its leases: its endpoint, or (a job's own `webhook_url`) the URL. */
export function endpointLeaseKey(endpointId: string | null, url: string): string {
  return endpointId ?? `url-${createHash('sha256').update(url).digest('base64url').slice(0, 22)}`;
}

/**
 * Delivery capacity shared fairly across worker processes: at most `endpointCap` deliveries in flight per
 * endpoint (WEBHOOK_ENDPOINT_CONCURRENCY) and `customerCap` per customer (WEBHOOK_CUSTOMER_CONCURRENCY),
 * counted in Redis. A customer whose endpoints hang holds at most its own cap of the workers' slots; the
 * rest go to everybody else. Every lease key carries the `{webhook-leases}` hash tag (one slot for the
 * script and the release's MULTI on a Redis Cluster).
 */
export class DeliveryLeases {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private keys(endpointKey: string, customerId: string): [string, string] {
    const tagged = `${this.prefix}:{webhook-leases}`;
    return [`${tagged}:endpoint:${endpointKey}`, `${tagged}:customer:${customerId}`];
  }

  /** Null when taken (release it after the attempt), else which cap refused it. */
  async acquire(lease: {
    deliveryId: string;
    endpointKey: string;
    customerId: string;
    endpointCap: number;
    customerCap: number;
    /** How long the lease lasts if never released (the attempt's timeout and some). */
    ttlMs: number;
  }): Promise<LeaseRefusal | null> {
    const [endpointKey, customerKey] = this.keys(lease.endpointKey, lease.customerId);
    const answer = Number(
      await this.redis.eval(
        acquireScript,
        2,
        endpointKey,
        customerKey,
        lease.deliveryId,
        Math.ceil(lease.ttlMs),
        lease.endpointCap,
        lease.customerCap,
      ),
    );
    return answer === 1 ? null : answer === -1 ? 'endpoint' : 'customer';
  }

  async release(lease: { deliveryId: string; endpointKey: string; customerId: string }): Promise<void> {
    const [endpointKey, customerKey] = this.keys(lease.endpointKey, lease.customerId);
    await this.redis.multi().zrem(endpointKey, lease.deliveryId).zrem(customerKey, lease.deliveryId).exec();
  }

  /** Deliveries in flight to an endpoint right now (for tests and metrics). */
  async inFlight(endpointKey: string): Promise<number> {
    const [key] = this.keys(endpointKey, '');
    return this.redis.zcount(key, Date.now(), '+inf');
  }
}
