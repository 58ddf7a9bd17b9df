import type { EntityManager } from '@mikro-orm/postgresql';
import { uuidv7 } from '../../lib/uuid.js';
import type { User } from '../entities/user.entity.js';
import { inTransaction } from '../transaction.js';

/**
 * The SQL behind registration, login, refresh tokens and TOS acceptance. Every function takes the
 * entity manager it runs on, so callers decide the transaction.
 */

export type UserRow = Pick<User, 'id' | 'customerId' | 'email' | 'passwordHash' | 'role' | 'createdAt'>;

const userColumns = `id, customer_id as "customerId", email, password_hash as "passwordHash", role, created_at as "createdAt"`;

export type NewAccount = Pick<User, 'email' | 'passwordHash' | 'role'> & { tosVersion: string };

/**
 * Creates customer, user, TOS acceptance and the `compute` service (tier `starter`) in one transaction.
 * Returns null when the email is taken — also when another transaction takes it concurrently, since the
 * user insert waits on the unique index and then does nothing.
 */
export async function createAccount(em: EntityManager, account: NewAccount): Promise<UserRow | null> {
  return inTransaction(em, async (tx) => {
    const customerId = uuidv7();
    const [user] = await tx.execute<UserRow[]>(
      `insert into users (id, customer_id, email, password_hash, role) values (?, ?, ?, ?, ?)
       on conflict (email) do nothing
       returning ${userColumns}`,
      [uuidv7(), customerId, account.email, account.passwordHash, account.role],
    );
    // Nothing else has been written yet, so returning here commits an empty transaction.
    if (!user) return null;
    await tx.execute(`insert into customers (id, name) values (?, ?)`, [customerId, account.email]);
    await tx.execute(`insert into service_instances (customer_id, service_type, tier, enabled) values (?, 'compute', 'starter', true)`, [
      customerId,
    ]);
    await recordTosAcceptance(tx, user.id, account.tosVersion);
    return user;
  });
}

export async function findUserByEmail(em: EntityManager, email: string): Promise<UserRow | null> {
  const [row] = await em.execute<UserRow[]>(`select ${userColumns} from users where email = ?`, [email]);
  return row ?? null;
}

export async function findUserById(em: EntityManager, id: string): Promise<UserRow | null> {
  const [row] = await em.execute<UserRow[]>(`select ${userColumns} from users where id = ?`, [id]);
  return row ?? null;
}

/** Whether one of the customer's users is an admin: the platform's own (internal) customer, which billing never charges. */
export async function hasAdminUser(em: EntityManager, customerId: string): Promise<boolean> {
  const [row] = await em.execute<Array<{ internal: boolean }>>(
    `select exists (select 1 from users where customer_id = ? and role = 'admin') as internal`,
    [customerId],
  );
  return row?.internal ?? false;
}

/** The version the gate compares against: the most recently accepted one. */
export async function latestTosVersion(em: EntityManager, userId: string): Promise<string | null> {
  const [row] = await em.execute<Array<{ version: string }>>(
    `select version from tos_acceptances where user_id = ? order by accepted_at desc limit 1`,
    [userId],
  );
  return row?.version ?? null;
}

/**
 * Records acceptance of `version`. Accepting a version again refreshes `accepted_at`: the gate reads the
 * latest acceptance, so after a rollback (2.0.0 → 1.0.0) re-accepting 1.0.0 must make it the latest again.
 */
export async function recordTosAcceptance(em: EntityManager, userId: string, version: string): Promise<string> {
  const [row] = await em.execute<Array<{ acceptedAt: string }>>(
    `insert into tos_acceptances (id, user_id, version) values (?, ?, ?)
     on conflict (user_id, version) do update set accepted_at = now()
     returning accepted_at as "acceptedAt"`,
    [uuidv7(), userId, version],
  );
  return row!.acceptedAt;
}

export interface RefreshTokenGrant {
  userId: string;
  familyId: string;
  tokenHash: string;
  expiresAt: Date;
}

export async function insertRefreshToken(em: EntityManager, grant: RefreshTokenGrant): Promise<void> {
  await em.execute(`insert into refresh_tokens (id, user_id, family_id, token_hash, expires_at) values (?, ?, ?, ?, ?::timestamptz)`, [
    uuidv7(),
    grant.userId,
    grant.familyId,
    grant.tokenHash,
    grant.expiresAt.toISOString(),
  ]);
}

export type RotationOutcome =
  | { outcome: 'rotated'; userId: string; familyId: string }
  /** The token had already been rotated: someone replayed it, so its family is now revoked. */
  | { outcome: 'reused' }
  | { outcome: 'invalid' };

/**
 * Takes, until the transaction ends, the lock of the family the refresh token with this hash belongs to, and
 * answers that family (null: no such token). Every change to a family's tokens holds it first: without it, a
 * logout or a reuse's revocation that ran beside a refresh revoked the family as it was when the statement
 * started, and the token the refresh was adding stayed live.
 */
async function lockRefreshFamilyOf(tx: EntityManager, tokenHash: string): Promise<string | null> {
  const [row] = await tx.execute<Array<{ familyId: string }>>(
    `select family_id as "familyId", pg_advisory_xact_lock(hashtextextended('refresh-family:' || family_id::text, 0))
       from refresh_tokens where token_hash = ?`,
    [tokenHash],
  );
  return row?.familyId ?? null;
}

/**
 * Marks a live refresh token rotated, atomically: of two concurrent refreshes with one token, one wins
 * and the other counts as reuse. A rotated token presented again revokes its whole family. Run it in the
 * transaction that adds the family's next token: it holds the family's lock until then.
 */
export async function rotateRefreshToken(tx: EntityManager, tokenHash: string): Promise<RotationOutcome> {
  const familyId = await lockRefreshFamilyOf(tx, tokenHash);
  if (!familyId) return { outcome: 'invalid' };
  const [live] = await tx.execute<Array<{ userId: string }>>(
    `update refresh_tokens set rotated_at = now()
      where token_hash = ? and rotated_at is null and revoked_at is null and expires_at > now()
      returning user_id as "userId"`,
    [tokenHash],
  );
  if (live) return { outcome: 'rotated', userId: live.userId, familyId };
  const [known] = await tx.execute<Array<{ rotated: boolean }>>(
    `select rotated_at is not null as rotated from refresh_tokens where token_hash = ?`,
    [tokenHash],
  );
  if (!known?.rotated) return { outcome: 'invalid' };
  await revokeRefreshFamily(tx, familyId);
  return { outcome: 'reused' };
}

async function revokeRefreshFamily(tx: EntityManager, familyId: string): Promise<void> {
  await tx.execute(`update refresh_tokens set revoked_at = now() where family_id = ? and revoked_at is null`, [familyId]);
}

/** Logout: revokes the session (the token's family) the token belongs to, in a transaction of its own. Unknown tokens change nothing. */
export async function revokeRefreshTokenSession(em: EntityManager, tokenHash: string): Promise<void> {
  await inTransaction(em, async (tx) => {
    const familyId = await lockRefreshFamilyOf(tx, tokenHash);
    if (familyId) await revokeRefreshFamily(tx, familyId);
  });
}

export interface ExpireRefreshTokensStep {
  /** The last token id this step read; the next step starts after it. */
  lastId: string | null;
  deleted: number;
  /** No expired token is left to find: this step met a live one, or the end of the table. */
  done: boolean;
}

/**
 * One retention step over refresh tokens (jobs/retention): of the next `stepRows` tokens by id after `afterId`,
 * deletes those past their expiry, whatever their state — a token past its expiry is refused anyway, so keeping a
 * rotated one detects no reuse. Every login and refresh mints one (UUIDv7, in id order) with the same lifetime, so
 * they expire in id order: the scan is `done` at the first live token.
 */
export async function expireRefreshTokensStep(
  em: EntityManager,
  options: { afterId: string | null; stepRows: number },
): Promise<ExpireRefreshTokensStep> {
  const [step] = await em.getConnection().execute<Array<{ last_id: string | null; scanned: number; live: number; deleted: number }>>(
    `with scanned as (select id, expires_at from refresh_tokens where id > ?::uuid order by id limit ?),
          gone as (delete from refresh_tokens t using scanned s where t.id = s.id and s.expires_at < now() returning 1)
     select (select id::text from scanned order by id desc limit 1) as last_id,
            (select count(*)::int from scanned) as scanned,
            (select count(*)::int from scanned where expires_at >= now()) as live,
            (select count(*)::int from gone) as deleted`,
    [options.afterId ?? '00000000-0000-0000-0000-000000000000', options.stepRows],
  );
  return {
    lastId: step?.last_id ?? null,
    deleted: step?.deleted ?? 0,
    done: (step?.scanned ?? 0) < options.stepRows || (step?.live ?? 0) > 0,
  };
}
