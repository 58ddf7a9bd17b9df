import type { RedisClient } from './redis.js';

/**
 * The Redis pub/sub channels between processes. Here rather than in queue/ because job processors publish
 * on them too (billing suspends a customer), and jobs/ sits below queue/.
 */

/** Where the API asks every worker to abort a running job (DELETE /jobs/:id); the message is the job's BullMQ id. */
export const cancelChannel = (queuePrefix: string): string => `${queuePrefix}:jobs:cancel`;

/** The Redis channel every API process's PrincipalCache listens on (see api/auth/principal.ts). */
export const accessChangeChannel = (queuePrefix: string): string => `${queuePrefix}:auth:invalidate`;

/**
 * Tells every API process that a customer's access changed (suspended, resumed, tier changed), so cached
 * principals are dropped at once instead of living out their TTL. For processes without a PrincipalCache,
 * such as workers; the API calls `principals.invalidateCustomer`, which publishes the same message.
 */
export async function publishAccessChange(redis: RedisClient, queuePrefix: string, customerId: string): Promise<void> {
  await redis.publish(accessChangeChannel(queuePrefix), customerId);
}

/** Where the API tells every worker that an admin paused or resumed a customer: `pause:<customer id>` or `resume:<customer id>`. */
export const customerPauseChannel = (queuePrefix: string): string => `${queuePrefix}:customers:pause`;
