import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createOrm, migrate } from '../../../db/orm.js';
import { ensureLocalServices, freePort } from '../../../ops/local-services.js';
import { auditTriggerSql } from './audit.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Data dir of the suite's own PostgreSQL cluster (initialised, stopped between files). */
    faultsDataDir: string;
    /** Migrated database (with the audit trigger) that each scenario clones. */
    faultsTemplateDatabase: string;
  }
}

export const templateDatabase = 'chrysalis_faults_tpl';

/**
 * Once per `npm run test:faults`: a PostgreSQL cluster of the suite's own in a temp dir, on a spare port
 * remembered in `<dataDir>/postgres.port` (never the machine's 5432), with a migrated template database.
 * The cluster is stopped again: each scenario file starts it, so it may stop it.
 */
export default async function setup(project: TestProject) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chrysalis-faults-'));
  fs.writeFileSync(path.join(dataDir, 'postgres.port'), String(await freePort()));
  const services = await ensureLocalServices({ dataDir, redis: false, databaseName: templateDatabase });
  try {
    const orm = await createOrm(services.databaseUrl, { poolMax: 2 });
    try {
      await migrate(orm);
    } finally {
      await orm.close();
    }
    const client = new pg.Client({ connectionString: services.databaseUrl });
    await client.connect();
    await client.query(auditTriggerSql);
    await client.end();
  } finally {
    await services.stop();
  }
  project.provide('faultsDataDir', dataDir);
  project.provide('faultsTemplateDatabase', templateDatabase);
  return () => {
    // FAULTS_KEEP_DATA=1 keeps the processes' logs and the cluster for a look after a run.
    if (process.env.FAULTS_KEEP_DATA) console.log(`fault suite data kept in ${dataDir}`);
    else fs.rmSync(dataDir, { recursive: true, force: true });
  };
}
