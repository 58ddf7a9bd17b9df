import type { EntityManager, Knex } from '@mikro-orm/postgresql';

/**
 * Runs `sql` (`?` placeholders) with `bindings` sent to PostgreSQL as statement parameters, on the entity
 * manager's transaction if it has one, and returns the rows.
 *
 * Use this, not `em.execute` / `connection.execute`, for any statement whose values can be large (job
 * payloads, results, batches of rows): MikroORM's `execute` inlines every parameter into the SQL text in
 * JavaScript (`platform.formatQuery`, escaping each character), on the event loop. A 16 MB bulk of job
 * payloads froze the API for many seconds that way; as a parameter it is handed to the driver as is.
 * A JavaScript array binds as one PostgreSQL array parameter (`?::uuid[]`).
 */
export async function queryWithParameters<Row = Record<string, unknown>>(
  em: EntityManager,
  sql: string,
  bindings: readonly unknown[],
): Promise<Row[]> {
  const knex = (em.getTransactionContext() as Knex.Transaction | undefined) ?? em.getConnection('write').getKnex();
  const result = (await knex.raw(sql, bindings as Knex.RawBinding[])) as { rows: Row[] };
  return result.rows;
}
