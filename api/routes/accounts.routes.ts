import type { EntityManager } from '@mikro-orm/postgresql';
import { serviceTypes } from '../../jobs/billing/pricing.js';
import { Router, type RequestHandler } from 'express';
import { uuidv7 } from '../../lib/uuid.js';
import { z } from 'zod';
import type { Role } from '../../db/entities/user.entity.js';
import {
  createAccount,
  findUserById,
  insertRefreshToken,
  latestTosVersion,
  recordTosAcceptance,
  revokeRefreshTokenSession,
  rotateRefreshToken,
} from '../../db/repositories/accounts.js';
import {
  apiKeyExists,
  apiKeysScope,
  insertApiKeyWithinCap,
  listApiKeys,
  lockApiKey,
  revokeApiKey,
  type ApiKeyCapReached,
  type ApiKeyRow,
} from '../../db/repositories/api-keys.js';
import { principalOf } from '../auth/authenticate.js';
import {
  accessTokenTtlSeconds,
  apiKeyPrefix,
  newApiKey,
  newRefreshToken,
  refreshTokenTtlMs,
  signAccessToken,
} from '../auth/credentials.js';
import { encryptSecret, sha256 } from '../../lib/crypto.js';
import { checkLogin } from '../auth/check-login.js';
import { FailedLoginThrottle } from '../auth/login-throttle.js';
import { hashPassword, maxPasswordBytes, minPasswordBytes, passwordBytes } from '../auth/passwords.js';
import type { Principal } from '../auth/principal.js';
import { tosText } from '../auth/tos-text.js';
import type { ApiDeps } from '../deps.js';
import { decodeCursor, page, paginationQuery } from '../pagination.js';
import { capProblem, notFound, ProblemError } from '../problems.js';
import { optionalBody, parseInput, refuseBodyFields, refuseQueryFields } from '../validate.js';
import { inTransaction, queuedInCustomerScope } from '../../db/transaction.js';
import { storableTime } from '../storable-time.js';
import { clientAddress } from '../rate-limits.js';
import { isoTime } from '../../lib/iso-time.js';

const isoOrNull = (value: string | Date | null): string | null => (value === null ? null : isoTime(value));

const newPassword = z
  .string()
  .refine((value) => passwordBytes(value) >= minPasswordBytes, `must be at least ${minPasswordBytes} bytes`)
  .refine((value) => passwordBytes(value) <= maxPasswordBytes, `must be at most ${maxPasswordBytes} bytes (UTF-8)`);

export const registerBody = z.strictObject({
  email: z
    .email()
    .max(254)
    .transform((email) => email.toLowerCase()),
  password: newPassword,
  accept_tos: z.boolean(),
  tos_version: z.string().min(1).max(64),
});

export const loginBody = z.strictObject({
  email: z
    .string()
    .min(1)
    .max(254)
    .transform((email) => email.toLowerCase()),
  password: z.string().min(1).max(1024),
});

export const refreshTokenBody = z.strictObject({ refresh_token: z.string().min(1).max(512) });
export const tosAcceptBody = z.strictObject({ version: z.string().min(1).max(64) });

const expiresAt = storableTime().nullable().optional();

export const createApiKeyBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  /** Keys exist for the service types the pricing configuration names; the 400 lists them so nobody has to guess. */
  service_type: z
    .enum(serviceTypes, {
      error: `must be one of: ${serviceTypes.join(', ')} (compute for calls of this API, the others for the edge services the pricing configuration names)`,
    })
    .describe('`compute` for calls of this API; the others are edge services (e.g. `seal`) whose traffic the edge proxy reports'),
  expires_at: expiresAt,
});
export const rotateApiKeyBody = z.strictObject({ expires_at: expiresAt });
export const listApiKeysQuery = z.strictObject({ ...paginationQuery });
export const apiKeyIdParams = z.object({ id: z.uuid('an API key id is a UUID') });

const unprocessable = (field: string, message: string) =>
  new ProblemError('unprocessable', `${field} ${message}`, { errors: [{ field, message }] });
const invalidRefreshToken = () => new ProblemError('unauthorized', 'invalid, expired or revoked refresh token');

/** Expiry from a request: null for none; in the past is a 422 naming `field`. */
function futureDate(value: string | null, field: string): Date | null {
  if (value === null) return null;
  const date = new Date(value);
  if (date.getTime() <= Date.now()) throw unprocessable(field, 'must be in the future');
  return date;
}

function apiKeyView(row: ApiKeyRow) {
  return {
    id: row.id,
    name: row.name,
    service_type: row.serviceType,
    prefix: row.prefix,
    expires_at: isoOrNull(row.expiresAt),
    revoked_at: isoOrNull(row.revokedAt),
    created_at: isoTime(row.createdAt),
  };
}

/** Routes that need no credentials: register, login, refresh, logout and the TOS text. */
/** The 422 of a create that would take its customer past the tier's cap of live API keys (TIER_MAX_API_KEYS). */
const apiKeyCapProblem = ({ capReached }: ApiKeyCapReached): ProblemError =>
  capProblem('api_keys', 'live API keys', capReached, 'body', 'revoke one first');

export function publicAccountRoutes(deps: ApiDeps): Router {
  const router = Router();
  const { config } = deps;
  const failedLogins = new FailedLoginThrottle(deps.redis, config.queuePrefix);

  /** Access JWT plus a new refresh token in `familyId` (a login starts a family; refreshes continue it). */
  async function issueTokens(em: EntityManager, user: { id: string; customerId: string; role: Role }, familyId: string) {
    const refreshToken = newRefreshToken();
    await insertRefreshToken(em, {
      userId: user.id,
      familyId,
      tokenHash: sha256(refreshToken),
      expiresAt: new Date(Date.now() + refreshTokenTtlMs),
    });
    return {
      access_token: signAccessToken(config.jwtSecret, { sub: user.id, cid: user.customerId, role: user.role }),
      refresh_token: refreshToken,
      token_type: 'bearer' as const,
      expires_in: accessTokenTtlSeconds,
    };
  }

  router.post('/auth/register', async (req, res) => {
    const body = parseInput(registerBody, req.body, 'body');
    if (body.accept_tos !== true) throw unprocessable('body.accept_tos', 'must be true: the terms of service have to be accepted');
    if (body.tos_version !== config.tosVersion)
      throw unprocessable('body.tos_version', `must be the current version ${config.tosVersion} (see GET /api/v1/tos)`);
    // Hashed before the email is looked at, and the email settled by the insert itself: a taken email costs
    // the same bcrypt hash and the same statement as a new one, so the time of the 409 does not tell
    // which accounts exist.
    const passwordHash = await hashPassword(body.password);
    const user = await createAccount(deps.orm.em.fork(), { email: body.email, passwordHash, role: 'user', tosVersion: body.tos_version });
    if (!user) throw new ProblemError('conflict', 'an account with this email already exists');
    res
      .status(201)
      .json({ id: user.id, email: user.email, customer_id: user.customerId, role: user.role, created_at: isoTime(user.createdAt) });
  });

  router.post('/auth/login', async (req, res) => {
    const body = parseInput(loginBody, req.body, 'body');
    const em = deps.orm.em.fork();
    const user = await checkLogin(em, failedLogins, body.email, body.password, clientAddress(req));
    res.setHeader('Cache-Control', 'no-store');
    res.json(await issueTokens(em, user, uuidv7()));
  });

  router.post('/auth/refresh', async (req, res) => {
    const { refresh_token } = parseInput(refreshTokenBody, req.body, 'body');
    // The transaction returns instead of throwing, so a reuse's family revocation commits before the 401.
    const tokens = await inTransaction(deps.orm.em, async (tx) => {
      const rotation = await rotateRefreshToken(tx, sha256(refresh_token));
      if (rotation.outcome !== 'rotated') return null;
      const user = await findUserById(tx, rotation.userId);
      return user ? issueTokens(tx, user, rotation.familyId) : null;
    });
    if (!tokens) throw invalidRefreshToken();
    res.setHeader('Cache-Control', 'no-store');
    res.json(tokens);
  });

  router.post('/auth/logout', async (req, res) => {
    const { refresh_token } = parseInput(refreshTokenBody, req.body, 'body');
    await revokeRefreshTokenSession(deps.orm.em.fork(), sha256(refresh_token));
    res.status(204).end();
  });

  router.get('/tos', (_req, res) => {
    res.json({ version: config.tosVersion, text: tosText });
  });

  return router;
}

/** API keys act for the customer; managing keys and accepting terms take a signed-in user. */
function userIdOf(principal: Principal, action: string): string {
  if (!principal.userId) throw new ProblemError('forbidden', `${action} needs a user access token, not an API key`);
  return principal.userId;
}

/**
 * Routes that need credentials: who am I, TOS acceptance and API keys. `auth` and `authWithoutTos`
 * authenticate (with and without the TOS gate) and rate-limit.
 */
export function accountRoutes(deps: ApiDeps, middleware: { auth: RequestHandler[]; authWithoutTos: RequestHandler[] }): Router {
  const router = Router();
  const { config } = deps;
  const { auth, authWithoutTos } = middleware;

  router.get('/auth/me', ...authWithoutTos, async (req, res) => {
    refuseQueryFields(req.query);
    const principal = principalOf(req);
    const base = {
      role: principal.role,
      customer_id: principal.customerId,
      service_type: principal.serviceType,
      tos_version_current: config.tosVersion,
    };
    if (!principal.userId) {
      // An API key has no user: describe the customer it acts for. Reachable before the terms are accepted, as for users.
      res.json({ id: null, email: null, ...base, api_key_id: principal.apiKeyId, tos_version_accepted: null, tos_current: null });
      return;
    }
    const em = deps.orm.em.fork();
    const user = await findUserById(em, principal.userId);
    if (!user) throw notFound('user');
    const accepted = await latestTosVersion(em, user.id);
    res.json({
      id: user.id,
      email: user.email,
      ...base,
      api_key_id: null,
      created_at: isoTime(user.createdAt),
      tos_version_accepted: accepted,
      tos_current: accepted === config.tosVersion,
    });
  });

  router.post('/tos/accept', ...authWithoutTos, async (req, res) => {
    const principal = principalOf(req);
    const { version } = parseInput(tosAcceptBody, req.body, 'body');
    const userId = userIdOf(principal, 'accepting the terms of service');
    if (version !== config.tosVersion) throw unprocessable('body.version', `must be the current version ${config.tosVersion}`);
    const acceptedAt = await recordTosAcceptance(deps.orm.em.fork(), userId, version);
    await deps.principals.invalidateCustomer(principal.customerId);
    res.json({ version, accepted_at: isoTime(acceptedAt) });
  });

  /**
   * A transaction that stores a key of the principal's customer, queued behind this process's others for that
   * customer (`queuedInCustomerScope`): `insertApiKeyWithinCap` waits there for the customer's lock, holding no
   * pooled connection meanwhile.
   */
  const keyWrite = <T>(principal: Principal, work: (tx: EntityManager) => Promise<T>): Promise<T> =>
    queuedInCustomerScope(apiKeysScope, principal.customerId, () => inTransaction(deps.orm.em, work));

  /** Stores `key` (its hash and sealed copy, never the key) for the principal's customer within the tier's cap; the 422 past it. */
  async function insertKeyWithinCap(
    tx: EntityManager,
    principal: Principal,
    key: string,
    fields: { name: string; serviceType: string; expiresAt: Date | null },
  ): Promise<ApiKeyRow> {
    const row = await insertApiKeyWithinCap(
      tx,
      {
        customerId: principal.customerId,
        ...fields,
        prefix: apiKeyPrefix(key),
        keyHash: sha256(key),
        encryptedKey: encryptSecret(config.vaultKey, key),
      },
      config.tierMaxApiKeys[principal.tier],
    );
    if ('capReached' in row) throw apiKeyCapProblem(row);
    return row;
  }

  router.post('/api-keys', ...auth, async (req, res) => {
    const principal = principalOf(req);
    userIdOf(principal, 'managing API keys');
    const body = parseInput(createApiKeyBody, req.body, 'body');
    const expires = futureDate(body.expires_at ?? null, 'body.expires_at');
    const key = newApiKey();
    const row = await keyWrite(principal, (tx) =>
      insertKeyWithinCap(tx, principal, key, { name: body.name, serviceType: body.service_type, expiresAt: expires }),
    );
    res.setHeader('Cache-Control', 'no-store');
    res.status(201).json({ ...withoutRevokedAt(apiKeyView(row)), key });
  });

  router.get('/api-keys', ...auth, async (req, res) => {
    const principal = principalOf(req);
    userIdOf(principal, 'managing API keys');
    const query = parseInput(listApiKeysQuery, req.query, 'query');
    const beforeId = decodeCursor(query.cursor, z.uuid());
    const rows = await listApiKeys(deps.orm.em.fork(), principal.customerId, beforeId, query.limit + 1);
    res.json(page(rows, query.limit, apiKeyView, (row) => row.id));
  });

  /** Revoking is idempotent: an already revoked key answers 204 again; unknown and other customers' keys 404. */
  router.delete('/api-keys/:id', ...auth, async (req, res) => {
    const principal = principalOf(req);
    userIdOf(principal, 'managing API keys');
    const { id } = parseInput(apiKeyIdParams, req.params, 'params');
    refuseBodyFields(req.body);
    const em = deps.orm.em.fork();
    const revoked = await revokeApiKey(em, principal.customerId, id);
    if (!revoked && !(await apiKeyExists(em, principal.customerId, id))) throw notFound(`API key ${id}`);
    if (revoked) await deps.principals.invalidateCustomer(principal.customerId);
    res.status(204).end();
  });

  /** A new key (new id) with the old one's name and service type; the old key stops working at once. */
  router.post('/api-keys/:id/rotate', ...auth, async (req, res) => {
    const principal = principalOf(req);
    userIdOf(principal, 'managing API keys');
    const { id } = parseInput(apiKeyIdParams, req.params, 'params');
    const body = parseInput(rotateApiKeyBody, optionalBody(req.body), 'body');
    const key = newApiKey();
    const row = await keyWrite(principal, async (tx) => {
      const old = await lockApiKey(tx, principal.customerId, id);
      if (!old) throw notFound(`API key ${id}`);
      if (old.revokedAt) throw new ProblemError('conflict', `API key ${id} is revoked; create a new key instead`);
      const expires =
        body.expires_at !== undefined
          ? futureDate(body.expires_at, 'body.expires_at')
          : old.expiresAt === null
            ? null
            : new Date(old.expiresAt);
      if (expires && expires.getTime() <= Date.now())
        throw unprocessable('body.expires_at', 'the key has expired: give a new expires_at (or null for none)');
      await revokeApiKey(tx, principal.customerId, id);
      // The old key's room is free again; an expired one's was already, so its rotation may meet the cap (its 422 is
      // thrown inside the transaction, so the old key's revocation is rolled back with it).
      return insertKeyWithinCap(tx, principal, key, { name: old.name, serviceType: old.serviceType, expiresAt: expires });
    });
    await deps.principals.invalidateCustomer(principal.customerId);
    res.setHeader('Cache-Control', 'no-store');
    res.status(201).json({ ...withoutRevokedAt(apiKeyView(row)), key, rotated_from: id });
  });

  return router;
}

function withoutRevokedAt<View extends { revoked_at: unknown }>(view: View): Omit<View, 'revoked_at'> {
  const { revoked_at: _revoked, ...rest } = view;
  return rest;
}
