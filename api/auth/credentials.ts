import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Role } from '../../db/entities/user.entity.js';

/** Access tokens live one hour. */
export const accessTokenTtlSeconds = 3600;
/** Refresh tokens live 30 days. */
export const refreshTokenTtlMs = 30 * 24 * 3600 * 1000;

export interface AccessClaims {
  sub: string;
  cid: string;
  role: Role;
}

/**
 * The secret as a key object, made once per secret. Given the string, jsonwebtoken first tries it as a PEM
 * public key on every call (`createPublicKey` throws, then it makes the secret key): ~700 µs of each verify.
 */
const secretKeys = new Map<string, KeyObject>();
function secretKeyOf(secret: string): KeyObject {
  let key = secretKeys.get(secret);
  if (!key) {
    key = createSecretKey(Buffer.from(secret));
    secretKeys.set(secret, key);
  }
  return key;
}

export function signAccessToken(secret: string, claims: AccessClaims): string {
  return jwt.sign(claims, secretKeyOf(secret), { algorithm: 'HS256', expiresIn: accessTokenTtlSeconds });
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Verifies with the algorithm pinned to HS256, so `alg: none` and RS/HS confusion are refused. Claims must
 * be well-formed even under a valid signature (a leaked or misused secret must not mint forever-tokens or
 * reach the database with junk): `exp` is required, `sub` and `cid` are UUIDs.
 */
export function verifyAccessToken(secret: string, token: string): AccessClaims | null {
  try {
    const payload = jwt.verify(token, secretKeyOf(secret), { algorithms: ['HS256'] });
    if (typeof payload !== 'object' || typeof payload.exp !== 'number') return null;
    if (
      typeof payload.sub !== 'string' ||
      !uuidPattern.test(payload.sub) ||
      typeof payload.cid !== 'string' ||
      !uuidPattern.test(payload.cid)
    )
      return null;
    const role = payload.role === 'admin' ? 'admin' : 'user';
    return { sub: payload.sub, cid: payload.cid, role };
  } catch {
    return null;
  }
}

export const newRefreshToken = (): string => `rt_${randomBytes(32).toString('base64url')}`;

export const apiKeyPattern = /^sk_live_[A-Za-z0-9_-]{43}$/;
export const newApiKey = (): string => `sk_live_${randomBytes(32).toString('base64url')}`;
/** What lists show: enough to recognise a key, never enough to use it. */
export const apiKeyPrefix = (key: string): string => key.slice(0, 12);
