import { defineConfig } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { fileURLToPath } from 'node:url';
import { entities } from './entities/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const runningTypeScript = import.meta.url.endsWith('.ts');

/** MikroORM options shared by the app and the CLI (`npm run migration:create`). */
export function ormOptions(databaseUrl: string, debug = false) {
  return defineConfig({
    clientUrl: databaseUrl,
    entities,
    extensions: [Migrator],
    discovery: { disableDynamicFileAccess: true, requireEntitiesArray: true },
    debug,
    forceUtcTimezone: true,
    preferTs: runningTypeScript,
    pool: { min: 0, max: 10 },
    // Fail fast while PostgreSQL is down, so the API answers 503 quickly instead of hanging.
    driverOptions: { acquireConnectionTimeout: 3000, connection: { connectionTimeoutMillis: 2000 } },
    migrations: {
      tableName: 'mikro_orm_migrations',
      path: runningTypeScript ? here.replace(/\/db\/$/, '/dist/db/') + 'migrations' : here + 'migrations',
      pathTs: here + 'migrations',
      glob: runningTypeScript ? '!(*.d).ts' : '!(*.d).js',
      emit: 'ts',
      snapshot: true,
      snapshotName: '.snapshot-chrysalis',
      transactional: true,
      silent: true,
    },
  });
}

export default ormOptions(process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/chrysalis_migrations');
