import { MikroORM } from '@mikro-orm/postgresql';
import { ormOptions } from './mikro-orm.config.js';

export type Orm = MikroORM;

/** Connects MikroORM. Call `migrate(orm)` at start-up before serving. */
export async function createOrm(databaseUrl: string, options: { poolMax?: number } = {}): Promise<Orm> {
  const base = ormOptions(databaseUrl);
  return MikroORM.init({ ...base, pool: { ...base.pool, max: options.poolMax ?? base.pool?.max } });
}

/** Applies pending migrations; safe to run from several processes at once (an advisory lock serialises them). */
export async function migrate(orm: Orm): Promise<void> {
  const connection = orm.em.getConnection();
  const knex = connection.getKnex();
  await knex.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [7_231_994]);
    await orm.getMigrator().up({ transaction: trx });
  });
}
