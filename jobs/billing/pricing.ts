import type { Tier } from '../../db/entities/service-instance.entity.js';

/**
 * The pricing table: what a request and a gigabyte cost per service type and tier, what enabling or
 * upgrading a tier is estimated to cost (the seed's `validateOperation` figure), and the tier's rate limit.
 *
 * Prices are in micro-cents (1 µ¢ = 10⁻⁶ cent) so they stay integers; a usage record's price is computed
 * exactly and rounded once (see `priceUsage`). Adding a service type here makes it known everywhere:
 * API keys, `GET /services`, metering, billing and the vault.
 */
export interface TierPrice {
  /** Price of one request, in micro-cents. */
  requestMicroCents: bigint;
  /** Price of 10⁹ bytes sent, in micro-cents. */
  gigabyteMicroCents: bigint;
  /** What enabling the service at this tier (or upgrading to it) is estimated to cost, in cents. */
  estimatedUsdCents: number;
}

export const tiers = ['starter', 'pro', 'enterprise'] as const satisfies readonly Tier[];

const tierRank: Record<Tier, number> = { starter: 0, pro: 1, enterprise: 2 };

/**
 * Write requests (anything but GET and HEAD) per minute per tier (SPEC §5 rate limits); 0 = unlimited, as the
 * vault CSV writes it. The vault's `rate_limit` and `GET /services` show this figure.
 */
export const tierRateLimitPerMinute: Record<Tier, number> = { starter: 100, pro: 1000, enterprise: 0 };

/**
 * Read requests (GET, HEAD) per minute per tier, a budget apart from the writes (SPEC §9) and ten times
 * larger, so polling a job does not spend what submitting needs; 0 = unlimited.
 */
export const tierReadRateLimitPerMinute: Record<Tier, number> = { starter: 1000, pro: 10_000, enterprise: 0 };

export const pricingTable = {
  /** Every call of this API made with a JWT or a `compute` API key. */
  compute: {
    starter: { requestMicroCents: 10_000n, gigabyteMicroCents: 5_000_000n, estimatedUsdCents: 0 },
    pro: { requestMicroCents: 8_000n, gigabyteMicroCents: 4_000_000n, estimatedUsdCents: 1_000 },
    enterprise: { requestMicroCents: 5_000n, gigabyteMicroCents: 2_000_000n, estimatedUsdCents: 5_000 },
  },
  /** Seal key-server traffic, reported by the edge proxy through POST /admin/usage/ingest. */
  seal: {
    starter: { requestMicroCents: 20_000n, gigabyteMicroCents: 10_000_000n, estimatedUsdCents: 500 },
    pro: { requestMicroCents: 15_000n, gigabyteMicroCents: 8_000_000n, estimatedUsdCents: 2_000 },
    enterprise: { requestMicroCents: 10_000n, gigabyteMicroCents: 5_000_000n, estimatedUsdCents: 10_000 },
  },
} as const satisfies Record<string, Record<Tier, TierPrice>>;

export type ServiceType = keyof typeof pricingTable;

/** The service types Chrysalis knows: `compute` plus those the pricing table names for the edge proxy. */
export const serviceTypes = Object.keys(pricingTable) as [ServiceType, ...ServiceType[]];

export function isKnownServiceType(value: string): value is ServiceType {
  return Object.hasOwn(pricingTable, value);
}

export function isTier(value: string): value is Tier {
  return Object.hasOwn(tierRank, value);
}

export function tierPrice(serviceType: string, tier: Tier): TierPrice {
  if (!isKnownServiceType(serviceType)) throw new Error(`no price for service type "${serviceType}"`);
  return pricingTable[serviceType][tier];
}

/** True when moving from `from` to `to` raises the tier (and so needs `validateOperation`). */
export const isUpgrade = (from: Tier, to: Tier): boolean => tierRank[to] > tierRank[from];

const microCentsPerCent = 1_000_000n;
const bytesPerGigabyte = 1_000_000_000n;

/**
 * The price of one usage record in whole cents.
 *
 * Rounding rule: the exact price `requests × request µ¢ + bytes × GB µ¢ / 10⁹` is computed as a fraction
 * (BigInt, no floating point) and rounded **half up once per usage record** to whole cents. A customer's
 * charge is the sum of its records' rounded prices, so every record carries exactly the cents it was charged.
 * Example (seal, pro): 1,000 requests and 2·10⁹ bytes = 15,000,000 µ¢ + 16,000,000 µ¢ = 31¢.
 */
export function priceUsage(
  price: TierPrice,
  usage: { requestCount: bigint | number | string; bytesTransferred: bigint | number | string },
): number {
  const numerator =
    BigInt(usage.requestCount) * price.requestMicroCents * bytesPerGigabyte + BigInt(usage.bytesTransferred) * price.gigabyteMicroCents;
  const denominator = microCentsPerCent * bytesPerGigabyte;
  const cents = (numerator * 2n + denominator) / (denominator * 2n);
  return Number(cents);
}
