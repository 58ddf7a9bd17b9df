import { crc32 } from 'node:zlib';

/**
 * How queues are named (docs/design/queues-and-storage.md §1). The BullMQ prefix is plain (`chrysalis`)
 * and every queue name carries its own Redis Cluster hash tag: `{invoke.3}` for shard 3 of a sharded job
 * type, `{metering}` for a type with one queue. BullMQ's keys are `<prefix>:<name>:<suffix>`, so one queue's
 * keys share one slot (its scripts never cross slots) while a type's shards spread over every master.
 *
 * `.` separates type and shard: BullMQ refuses `:` in a queue name, `-` already appears inside type
 * names (`vault-export`), and `#` would start a URL fragment in Bull Board's links.
 */
export const shardSeparator = '.';

/** The queue name of one shard of a type (`{invoke.3}`), or of its only queue when it is not sharded (`{metering}`). */
export function queueName(type: string, shard: number | null): string {
  return shard === null ? `{${type}}` : `{${type}${shardSeparator}${shard}}`;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The shard a job id belongs to: CRC-32 of the UUIDv7's random tail (its last 16 hex digits, `rand_b`)
 * modulo `shards`. The tail, not the whole id: the leading 48 bits are a timestamp, so ids of one burst
 * share them. Anything that knows a job id (cancel, the sweeper, Bull Board links, tests) finds its queue
 * without a lookup. An id that is not a UUID (none is enqueued today) hashes whole, so it still has one shard.
 */
export function shardOf(jobId: string, shards: number): number {
  if (shards <= 1) return 0;
  const tail = uuidPattern.test(jobId) ? jobId.replaceAll('-', '').slice(16).toLowerCase() : jobId;
  return crc32(tail) % shards;
}
