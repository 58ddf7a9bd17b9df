import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Runs `work` in a database transaction on a fork bound to it (a savepoint when `em` is already in
 * one); commits when `work` resolves, rolls back when it throws.
 *
 * Use this, not `em.transactional`: MikroORM runs that callback (and every `flush`) inside an
 * AsyncLocalStorage, and on Node 20 the first AsyncLocalStorage `run` switches on promise hooks for
 * the whole process for good. A worker that had run one metering job then spent about a fifth more
 * CPU per invoke job (measured with `npm run bench -- --only=queue-drain`). Our repositories run raw
 * SQL through `tx.execute`, so nothing needs the context or a unit of work to flush.
 */
export async function inTransaction<T>(em: EntityManager, work: (tx: EntityManager) => Promise<T>): Promise<T> {
  const parent = em.getTransactionContext();
  const tx = em.fork({ clear: false });
  // The connection's transactional (knex BEGIN … COMMIT) is the one without an AsyncLocalStorage.
  // eslint-disable-next-line no-restricted-properties
  return tx.getConnection('write').transactional(
    (trx) => {
      tx.setTransactionContext(trx);
      return work(tx);
    },
    parent ? { ctx: parent } : {},
  );
}

/**
 * Serialises, until `tx` ends, the transactions that lock the same `scope` of the same customer: a per-customer
 * cap's count and insert become one step, so concurrent creates cannot both pass it.
 */
export async function lockCustomerScope(tx: EntityManager, scope: string, customerId: string): Promise<void> {
  await tx.execute(`select pg_advisory_xact_lock(hashtextextended(?, 0))`, [`${scope}:${customerId}`]);
}
