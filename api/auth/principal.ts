import type { EntityManager } from '@mikro-orm/postgresql';
import { subscribe, type RedisClient } from '../../lib/redis.js';
import { accessChangeChannel } from '../../lib/channels.js';
import type { Tier } from '../../db/entities/service-instance.entity.js';
import type { Role } from '../../db/entities/user.entity.js';
import { findApiKeyPrincipal, findUserPrincipal, type PrincipalRow } from '../../db/repositories/principals.js';

/** Who is calling, resolved from a JWT or an API key. */
export interface Principal {
  customerId: string;
  userId: string | null;
  apiKeyId: string | null;
  role: Role;
  /** The service the call counts against: `compute` for JWTs, the key's own type for API keys. */
  serviceType: string;
  tier: Tier;
  /** Null when the service may be used; else why not (`disabled`, `insufficient_balance`, `monthly_limit_exceeded`). */
  blockedReason: string | null;
  /**
   * Latest TOS version accepted: by the user, or for an API key by any user of its customer (a key acts
   * for the customer, and cannot accept terms itself).
   */
  acceptedTosVersion: string | null;
  /** When the API key stops working (epoch ms), checked on every use of a cached principal; null: never (and for users). */
  keyExpiresAt: number | null;
}

/** The principal while its credentials are still valid at `now`, else null. */
const unexpired = (principal: Principal | null, now: number): Principal | null =>
  principal && principal.keyExpiresAt !== null && principal.keyExpiresAt <= now ? null : principal;

/** A value, or (when it has to be fetched) a promise of it. */
export type MaybePromise<T> = T | Promise<T>;

/** Calls `next` with the value at once when it is there, or once the promise resolves. */
export function whenReady<T, R>(value: MaybePromise<T>, next: (value: T) => R): MaybePromise<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}

interface CacheEntry {
  principal: Principal | null;
  expiresAt: number;
}

/**
 * Principals cached in-process so no request pays a database read (or bcrypt) after the first.
 * Entries live `ttlMs`; anything that changes a customer's access publishes on Redis and every API
 * process drops that customer's entries at once.
 */
export class PrincipalCache {
  private readonly entries = new Map<string, CacheEntry>();
  /**
   * Credentials that named no one (a made-up or deleted key), apart from `entries`: a flood of made-up keys
   * fills only this map, and never pushes the known principals out (every request of theirs would then read
   * the database again).
   */
  private readonly unknown = new Map<string, CacheEntry>();
  private readonly channel: string;

  constructor(
    private readonly em: EntityManager,
    private readonly publisher: RedisClient,
    prefix: string,
    /** Entry lifetime in ms. Default 30 s. */
    private readonly ttlMs = 30_000,
    /** Most entries kept. Default 50,000. */
    private readonly maxEntries = 50_000,
  ) {
    this.channel = accessChangeChannel(prefix);
  }

  /** Subscribes to invalidations; pass a dedicated connection (a subscribed connection can do nothing else). */
  async listen(subscriber: RedisClient): Promise<void> {
    await subscribe(subscriber, this.channel);
    subscriber.on('message', (channel, customerId) => {
      if (channel === this.channel) this.dropCustomer(customerId);
    });
  }

  /** Tells every API process that this customer's access changed. */
  async invalidateCustomer(customerId: string): Promise<void> {
    this.dropCustomer(customerId);
    await this.publisher.publish(this.channel, customerId);
  }

  private dropCustomer(customerId: string): void {
    for (const [key, entry] of this.entries) if (entry.principal?.customerId === customerId) this.entries.delete(key);
  }

  /** Whether the principal of this API key (or that it names no one) is cached: `byApiKeyHash` reads no database. */
  knowsApiKey(keyHash: string): boolean {
    const key = `key:${keyHash}`;
    const now = Date.now();
    return (this.entries.get(key)?.expiresAt ?? 0) > now || (this.unknown.get(key)?.expiresAt ?? 0) > now;
  }

  /**
   * The principal of an API key (by its hash) or null; the cached answer comes back as it is, without a
   * promise (most requests), a miss as a promise of the database read.
   */
  byApiKeyHash(keyHash: string): MaybePromise<(Principal & { keyHash: string }) | null> {
    return this.cached(`key:${keyHash}`, () => this.loadApiKey(keyHash)) as MaybePromise<(Principal & { keyHash: string }) | null>;
  }

  /** Like `byApiKeyHash`, for a user. */
  byUserId(userId: string): MaybePromise<Principal | null> {
    return this.cached(`user:${userId}`, () => this.loadUser(userId));
  }

  private cached(key: string, load: () => Promise<Principal | null>): MaybePromise<Principal | null> {
    const now = Date.now();
    const entry = this.entries.get(key) ?? this.unknown.get(key);
    // A key's expiry is checked here, not only by the query that loaded it: an entry outlives it by up to `ttlMs`.
    if (entry && entry.expiresAt > now) return unexpired(entry.principal, now);
    return load().then((principal) => {
      const entries = principal ? this.entries : this.unknown;
      // The other map may hold this credential's earlier answer (a key deleted, or created, since).
      (principal ? this.unknown : this.entries).delete(key);
      if (entries.size >= this.maxEntries) entries.delete(entries.keys().next().value as string);
      entries.set(key, { principal, expiresAt: now + this.ttlMs });
      return unexpired(principal, Date.now());
    });
  }

  private async loadApiKey(keyHash: string): Promise<Principal | null> {
    const [row] = await findApiKeyPrincipal(this.em, keyHash);
    if (!row) return null;
    return {
      customerId: row.customer_id as string,
      userId: null,
      apiKeyId: row.id as string,
      role: row.is_admin ? 'admin' : 'user',
      serviceType: row.service_type as string,
      tier: row.tier as Tier,
      blockedReason: blockedReason(row),
      acceptedTosVersion: (row.tos_version as string | null) ?? null,
      keyExpiresAt: row.expires_at === null ? null : new Date(row.expires_at as string | Date).getTime(),
      keyHash: row.key_hash as string,
    } as Principal & { keyHash: string };
  }

  private async loadUser(userId: string): Promise<Principal | null> {
    const [row] = await findUserPrincipal(this.em, userId);
    if (!row) return null;
    return {
      customerId: row.customer_id as string,
      userId: row.id as string,
      apiKeyId: null,
      role: row.role as Role,
      serviceType: 'compute',
      tier: row.tier as Tier,
      blockedReason: blockedReason(row),
      acceptedTosVersion: (row.tos_version as string | null) ?? null,
      keyExpiresAt: null,
    };
  }
}

/** Why calls to the service are refused: suspended, disabled, or never enabled (no service row). */
function blockedReason(row: PrincipalRow): string | null {
  if (row.suspended_reason) return row.suspended_reason as string;
  if (row.enabled !== true) return 'service_disabled';
  return null;
}
