import type { Redis } from 'ioredis';

/** The Redis channel every API process's PrincipalCache listens on (see api/auth/principal.ts). */
export const accessChangeChannel = (queuePrefix: string): string => `${queuePrefix}:auth:invalidate`;

/**
 * Tells every API process that a customer's access changed (suspended, resumed, tier changed), so cached
 * principals are dropped at once instead of living out their TTL. For processes without a PrincipalCache,
 * such as workers; the API calls `principals.invalidateCustomer`, which publishes the same message.
 */
export async function publishAccessChange(redis: Redis, queuePrefix: string, customerId: string): Promise<void> {
  await redis.publish(accessChangeChannel(queuePrefix), customerId);
}
