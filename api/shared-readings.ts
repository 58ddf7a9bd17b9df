import { LRUCache } from 'lru-cache';

/**
 * `read` shared by the calls of one key (a customer, say) in this process: one reading at a time, its answer
 * serving every call for `reuseMs` after it was read. For figures that are costly to read and need not be fresh
 * at every call (`GET /stats`, `GET /relationships/stats`): a read budget's worth of calls then costs the
 * database one reading per `reuseMs`. Keeps the readings of at most `maxKeys` keys.
 */
export function sharedReadings<T extends object>(read: (key: string) => Promise<T>, reuseMs: number, maxKeys = 10_000) {
  const readings = new LRUCache<string, T>({ max: maxKeys, ttl: reuseMs, fetchMethod: (key) => read(key) });
  return async (key: string): Promise<T> => (await readings.fetch(key)) as T;
}
