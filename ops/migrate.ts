/**
 * `npm run migrate` (and `node dist/ops/migrate.js`, the one-shot `migrate` service in docker-compose.yml):
 * resolves PostgreSQL like `npm start` (DATABASE_URL, else the embedded one under DATA_DIR), applies pending
 * migrations and exits. Safe to run while the app runs: an advisory lock serialises migrators.
 */
import { performance } from 'node:perf_hooks';
import { createOrm, migrate } from '../db/orm.js';
import { ensureServicesForEnv, loadDotEnv, type LocalServices } from './local-services.js';

const say = (message: string) => process.stderr.write(`[chrysalis] ${message}\n`);

async function main(): Promise<void> {
  loadDotEnv();
  // Migrations need only PostgreSQL; Redis is neither looked for nor launched.
  const services: LocalServices = await ensureServicesForEnv(process.env, { log: say, redis: false });
  try {
    const started = performance.now();
    const orm = await createOrm(services.databaseUrl, { poolMax: 2 });
    try {
      await migrate(orm);
    } finally {
      await orm.close();
    }
    say(`database migrated (${Math.round(performance.now() - started)} ms)`);
  } finally {
    await services.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`Migration failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
