import type { EntityManager } from '@mikro-orm/postgresql';
import { findSubstrateDefinition, type SubstrateDefinition } from './repositories/substrates.js';

/**
 * Substrate definitions cached in a worker process. A substrate's expression never changes (a new
 * expression is a new id), so an entry can only go stale by deletion; entries live `ttlMs`, which
 * bounds how long a job accepted before a deletion may still evaluate the deleted substrate.
 */
export class SubstrateDefinitionCache {
  private readonly entries = new Map<string, { definition: SubstrateDefinition; expiresAt: number }>();

  constructor(
    /** Entry lifetime. Default 60 s. */
    private readonly ttlMs = 60_000,
    /** Most entries kept (oldest dropped first). Default 10,000. */
    private readonly maxEntries = 10_000,
  ) {}

  /** `emOf` is called only on a miss: a hit costs no entity manager. */
  async get(emOf: () => EntityManager, customerId: string, id: string): Promise<SubstrateDefinition | null> {
    const key = `${customerId}:${id}`;
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > now) return entry.definition;
    const definition = await findSubstrateDefinition(emOf(), customerId, id);
    if (!definition) {
      this.entries.delete(key);
      return null;
    }
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, { definition, expiresAt: now + this.ttlMs });
    return definition;
  }
}
