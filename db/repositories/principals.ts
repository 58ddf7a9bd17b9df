import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * What authentication needs to know about a caller, in one read each (the API caches the answer:
 * api/auth/principal.ts). Rows use the columns' own names; the API turns them into a Principal.
 */
export type PrincipalRow = Record<string, unknown>;

/** A live API key with its customer's service (tier, enabled, suspended_reason), admin status and latest accepted TOS version. */
export function findApiKeyPrincipal(em: EntityManager, keyHash: string): Promise<PrincipalRow[]> {
  return em.getConnection().execute<PrincipalRow[]>(
    `select k.id, k.customer_id, k.service_type, k.key_hash, k.expires_at,
            coalesce(s.tier, 'starter') as tier, s.enabled, s.suspended_reason,
            exists (select 1 from users u where u.customer_id = k.customer_id and u.role = 'admin') as is_admin,
            (select t.version from tos_acceptances t join users u on u.id = t.user_id
              where u.customer_id = k.customer_id order by t.accepted_at desc limit 1) as tos_version
       from api_keys k
       left join service_instances s on s.customer_id = k.customer_id and s.service_type = k.service_type
      where k.key_hash = ? and k.revoked_at is null and (k.expires_at is null or k.expires_at > now())`,
    [keyHash],
  );
}

/** A user with its customer's compute service and the latest TOS version it accepted; none once the customer is deleted. */
export function findUserPrincipal(em: EntityManager, userId: string): Promise<PrincipalRow[]> {
  return em.getConnection().execute<PrincipalRow[]>(
    `select u.id, u.customer_id, u.role, coalesce(s.tier, 'starter') as tier, s.enabled, s.suspended_reason,
            (select t.version from tos_acceptances t where t.user_id = u.id order by t.accepted_at desc limit 1) as tos_version
       from users u
       left join service_instances s on s.customer_id = u.customer_id and s.service_type = 'compute'
      where u.id = ? and not exists (select 1 from customers c where c.id = u.customer_id and c.deleted_at is not null)`,
    [userId],
  );
}
