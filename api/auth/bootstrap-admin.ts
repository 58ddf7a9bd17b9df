import type { ApiDeps } from '../deps.js';
import { createAccount, findUserByEmail, latestTosVersion, recordTosAcceptance } from '../../db/repositories/accounts.js';
import { hashPassword } from './passwords.js';

/**
 * Creates the bootstrap admin (`ADMIN_EMAIL` / `ADMIN_PASSWORD`) when no user has that email: role admin,
 * its own customer with the `compute` service, the current TOS accepted. Idempotent and safe when several
 * processes start at once (the unique email decides; the losers find the winner's user). An existing
 * account is never changed beyond recording acceptance of the current TOS: its password stays, and a
 * plain user holding the admin email is not promoted (that is logged instead).
 */
export async function ensureAdmin(deps: Pick<ApiDeps, 'config' | 'orm' | 'logger' | 'principals'>): Promise<void> {
  const { config, logger } = deps;
  const em = deps.orm.em.fork();
  let user = await findUserByEmail(em, config.adminEmail);
  if (!user) {
    const passwordHash = await hashPassword(config.adminPassword);
    user = await createAccount(em, { email: config.adminEmail, passwordHash, role: 'admin', tosVersion: config.tosVersion });
    if (user) {
      logger.info({ email: config.adminEmail }, 'bootstrap admin created');
      return;
    }
    // Another process created it between our look-up and insert.
    user = await findUserByEmail(em, config.adminEmail);
    if (!user) throw new Error(`bootstrap admin ${config.adminEmail}: insert conflicted but no user has that email`);
  }
  if (user.role !== 'admin') {
    logger.warn({ email: config.adminEmail }, 'ADMIN_EMAIL belongs to a user without the admin role; not promoting it');
    return;
  }
  if ((await latestTosVersion(em, user.id)) !== config.tosVersion) {
    await recordTosAcceptance(em, user.id, config.tosVersion);
    await deps.principals.invalidateCustomer(user.customerId);
    logger.info({ email: config.adminEmail, tos_version: config.tosVersion }, 'bootstrap admin accepted the current terms of service');
  }
}
