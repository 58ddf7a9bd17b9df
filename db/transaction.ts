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
 * cap's count and insert become one step, so concurrent creates cannot both pass it. Take it through
 * `inCustomerScope` (or inside `queuedInCustomerScope`), so that the transactions waiting for it are one per process.
 */
export async function lockCustomerScope(tx: EntityManager, scope: string, customerId: string): Promise<void> {
  await tx.execute(`select pg_advisory_xact_lock(hashtextextended(?, 0))`, [`${scope}:${customerId}`]);
}

/** What this process last queued for each customer scope (`queuedInCustomerScope`); settled entries are removed. */
const scopeQueues = new Map<string, Promise<void>>();

/**
 * Runs `work` once the work this process queued before it for the same `scope` of the same customer has ended.
 * A caller waiting here holds no database connection: a customer's burst of creates that serialise on
 * `lockCustomerScope` would otherwise hold one pooled connection each while they wait — a starter's 10 requests
 * in flight were the API's whole pool of 10, and every other customer's reads waited behind them.
 */
export function queuedInCustomerScope<T>(scope: string, customerId: string, work: () => Promise<T>): Promise<T> {
  const key = `${scope}:${customerId}`;
  const ahead = scopeQueues.get(key);
  const running = ahead ? ahead.then(work) : work();
  const settled = running.then(
    () => undefined,
    () => undefined,
  );
  scopeQueues.set(key, settled);
  void settled.then(() => {
    if (scopeQueues.get(key) === settled) scopeQueues.delete(key);
  });
  return running;
}

/**
 * Runs `work` in a transaction that holds the customer's `scope` lock (`lockCustomerScope`), queued behind this
 * process's other work in that scope (`queuedInCustomerScope`).
 */
export function inCustomerScope<T>(
  em: EntityManager,
  scope: string,
  customerId: string,
  work: (tx: EntityManager) => Promise<T>,
): Promise<T> {
  return queuedInCustomerScope(scope, customerId, () =>
    inTransaction(em, async (tx) => {
      await lockCustomerScope(tx, scope, customerId);
      return work(tx);
    }),
  );
}
