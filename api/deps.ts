import type { MikroORM } from '@mikro-orm/postgresql';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { InvocationCache } from '../db/invocation-cache.js';
import type { JobQueues } from '../workers/queues.js';
import type { PrincipalCache } from './auth/principal.js';
import type { JobWaiter } from './job-waiter.js';

/** Everything the HTTP edge talks to. Built by `api/main.ts` (or a test) and handed to `createApp`. */
export interface ApiDeps {
  config: Config;
  orm: MikroORM;
  redis: Redis;
  queues: JobQueues;
  logger: Logger;
  principals: PrincipalCache;
  cache: InvocationCache;
  waiter: JobWaiter;
}
