import type { EntityManager } from '@mikro-orm/postgresql';

interface PgConnection {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
  query(text: string): Promise<unknown>;
}

/** Runs `work` on a connection of MikroORM's pool, given back when it settles. */
async function onPooledConnection<T>(em: EntityManager, work: (connection: PgConnection) => Promise<T>): Promise<T> {
  const client = em.getConnection('write').getKnex().client;
  const connection = (await client.acquireConnection()) as PgConnection;
  try {
    return await work(connection);
  } finally {
    await client.releaseConnection(connection);
  }
}

/**
 * Runs one autocommit statement as a named prepared statement on a connection of MikroORM's pool:
 * PostgreSQL parses and plans it once per connection instead of on every call. For the hot, fixed
 * statements (job inserts and state writes): planning their `jsonb_to_recordset` joins cost about
 * 0.6 ms a call, more than running them. `text` uses `$1…` placeholders; a `name` names one text only.
 * Not for use inside a transaction (it takes its own connection).
 */
export function executePrepared<Row>(em: EntityManager, name: string, text: string, values: unknown[]): Promise<Row[]> {
  return onPooledConnection(em, async (connection) => (await connection.query({ name, text, values })).rows as Row[]);
}

/**
 * `executePrepared` inside a transaction of its own whose first statement is `settings` (transaction-local
 * `set_config` calls, e.g. planner hints, which PostgreSQL takes from no other place), so the settings never
 * outlive the statement on the pooled connection.
 */
export function executePreparedWithSettings<Row>(
  em: EntityManager,
  settings: string,
  name: string,
  text: string,
  values: unknown[],
): Promise<Row[]> {
  return onPooledConnection(em, async (connection) => {
    await connection.query('begin');
    try {
      await connection.query(settings);
      const { rows } = await connection.query({ name, text, values });
      await connection.query('commit');
      return rows as Row[];
    } catch (error) {
      await connection.query('rollback').catch(() => undefined);
      throw error;
    }
  });
}
