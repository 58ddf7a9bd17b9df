import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createOrm, migrate } from '../../db/orm.js';
import { ensureLocalServices } from '../../ops/local-services.js';
import { startLocalRedisCluster } from './redis-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
    redisUrl: string;
    /** TEST_REDIS_CLUSTER=1: REDIS_CLUSTER_NODES of the run's local 3-master cluster, which every test app uses; else ''. */
    redisClusterNodes: string;
    templateDatabase: string;
  }
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * Once per `npm test`: the same launcher as `npm start` (TEST_DATABASE_URL / TEST_REDIS_URL if set,
 * else embedded PostgreSQL under .data/test and the local Redis), then a migrated template database
 * that each test file clones.
 */
export default async function setup(project: TestProject) {
  const services = await ensureLocalServices({
    dataDir: path.resolve('.data/test'),
    databaseUrl: process.env.TEST_DATABASE_URL,
    redisUrl: process.env.TEST_REDIS_URL,
  });
  // One template per run, so concurrent `npm test` runs against one server never trip over each other.
  const templateDatabase = `chrysalis_tpl_${process.pid}`;
  const admin = new pg.Client({ connectionString: withDatabase(services.databaseUrl, 'postgres') });
  await admin.connect();
  await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = $1`, [templateDatabase]);
  await admin.query(`drop database if exists ${templateDatabase}`);
  await admin.query(`create database ${templateDatabase}`);
  const orm = await createOrm(withDatabase(services.databaseUrl, templateDatabase));
  await migrate(orm);
  await orm.close();
  await admin.end();

  project.provide('templateDatabase', templateDatabase);
  project.provide('adminDatabaseUrl', withDatabase(services.databaseUrl, 'postgres'));
  project.provide('redisUrl', services.redisUrl);
  const cluster = process.env.TEST_REDIS_CLUSTER ? await startLocalRedisCluster(3) : null;
  project.provide('redisClusterNodes', cluster?.nodes ?? '');
  return async () => {
    await cluster?.stop();
    const cleanup = new pg.Client({ connectionString: withDatabase(services.databaseUrl, 'postgres') });
    await cleanup.connect();
    await cleanup.query(`drop database if exists ${templateDatabase} with (force)`);
    await cleanup.end();
    await services.stop();
  };
}
