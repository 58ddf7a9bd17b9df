import type { Redis } from 'ioredis';
import { fairShareKey } from '../../queue/fair-share/fair-share.js';

type LaneReader = Pick<Redis, 'lrange' | 'zrange'>;

/**
 * The ids a customer's lane in a shard holds, in release order: its list (entries carry packed hint flags
 * after the id: `<id>!m`), then its prioritized zset.
 */
export async function heldIds(redis: LaneReader, queueKey: string, customerId: string): Promise<string[]> {
  const lane = `${fairShareKey(queueKey, 'lane')}${customerId}`;
  const listed = await redis.lrange(lane, 0, -1);
  return [...listed.map((entry) => entry.split('!')[0]!), ...(await redis.zrange(`${lane}:p`, 0, '-1'))];
}
