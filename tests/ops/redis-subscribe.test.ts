import { afterEach, describe, it } from 'vitest';
import { createRedis, subscribe, type RedisClient } from '../../lib/redis.js';
import { waitFor } from '../helpers/http.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis-server.js';

let redisServer: PrivateRedis | null = null;
const clients: RedisClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  await redisServer?.stop();
  redisServer = null;
});

describe('subscribe (lib/redis.ts)', () => {
  it('hears its channels again after Redis restarts', async () => {
    redisServer = await startPrivateRedis();
    const subscriber = createRedis(redisServer.url, 'blocking');
    const publisher = createRedis(redisServer.url);
    clients.push(subscriber, publisher);
    const heard: string[] = [];
    subscriber.on('message', (channel: string, message: string) => heard.push(`${channel}:${message}`));
    await subscribe(subscriber, 'news', 'alerts');
    await publisher.publish('news', 'before');
    await waitFor(async () => heard.includes('news:before'));

    await redisServer.kill();
    await redisServer.start();
    await waitFor(async () => (await publisher.publish('alerts', 'after')) > 0 && heard.includes('alerts:after'), 20_000);
  });
});
