import type { MigrationObject } from '@mikro-orm/core';
import { MikroORM } from '@mikro-orm/postgresql';
import { readdirSync } from 'node:fs';
import { ormOptions } from './mikro-orm.config.js';

export type Orm = MikroORM;

/**
 * The committed migrations, imported here rather than by MikroORM's own loader so that the same code
 * works from TypeScript (tsx, vitest) and from the build output.
 */
async function loadMigrations(): Promise<MigrationObject[]> {
  const directory = new URL('./migrations/', import.meta.url);
  const files = readdirSync(directory)
    .filter((file) => /^Migration\d+\.(ts|js)$/.test(file))
    .sort();
  return Promise.all(
    files.map(async (file) => {
      const name = file.replace(/\.(ts|js)$/, '');
      const module = (await import(new URL(file, directory).href)) as Record<string, MigrationObject['class']>;
      const migration = module[name];
      if (!migration) throw new Error(`${file} does not export ${name}`);
      return { name, class: migration };
    }),
  );
}

/** Connects MikroORM. Call `migrate(orm)` at start-up before serving. */
export async function createOrm(databaseUrl: string, options: { poolMax?: number } = {}): Promise<Orm> {
  const base = ormOptions(databaseUrl);
  return MikroORM.init({
    ...base,
    pool: { ...base.pool, max: options.poolMax ?? base.pool?.max },
    // The snapshot belongs to the CLI (`migration:create`). At run time MikroORM would rewrite it after
    // `up`, reading the schema outside our migration transaction, and so blank the committed file.
    migrations: { ...base.migrations, snapshot: false, migrationsList: await loadMigrations() },
  });
}

/** Applies pending migrations; safe to run from several processes at once (an advisory lock serialises them). */
export async function migrate(orm: Orm): Promise<void> {
  const knex = orm.em.getConnection().getKnex();
  await knex.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [7_231_994]);
    await orm.getMigrator().up({ transaction: trx });
  });
}
