import { describe, expect, it } from 'vitest';
import { billingBlockFor, validateOperation } from '../../jobs/billing/billing-rules.js';
import { isKnownServiceType, priceUsage, pricingTable, serviceTypes, tierRateLimitPerMinute } from '../../jobs/billing/pricing.js';
import { renderVaultLines, vaultCsvHeader } from '../../jobs/vault-export/vault-csv.js';

describe('pricing', () => {
  const computeStarter = pricingTable.compute.starter; // 0.01¢ a request, 5¢ a GB

  it('rounds each record half up to whole cents, exactly (no floating point)', () => {
    expect(priceUsage(computeStarter, { requestCount: 49, bytesTransferred: 0 })).toBe(0); // 0.49¢
    expect(priceUsage(computeStarter, { requestCount: 50, bytesTransferred: 0 })).toBe(1); // 0.5¢ → 1¢
    expect(priceUsage(computeStarter, { requestCount: 150, bytesTransferred: 0 })).toBe(2); // 1.5¢ → 2¢
    expect(priceUsage(computeStarter, { requestCount: 0, bytesTransferred: 100_000_000 })).toBe(1); // 0.1 GB × 5¢ = 0.5¢ → 1¢
    expect(priceUsage(computeStarter, { requestCount: 0, bytesTransferred: 99_999_999 })).toBe(0); // just under 0.5¢
    expect(priceUsage(pricingTable.seal.pro, { requestCount: 1000, bytesTransferred: 2_000_000_000 })).toBe(31);
    expect(priceUsage(pricingTable.seal.pro, { requestCount: 500, bytesTransferred: 500_000_000 })).toBe(12); // 11.5¢ → 12¢
    // 10¹⁵ requests at 0.01¢ would lose precision in a double; BigInt keeps it exact.
    expect(priceUsage(computeStarter, { requestCount: '1000000000000001', bytesTransferred: '0' })).toBe(10_000_000_000_000);
  });

  it('knows compute and the edge service types, each with a price for every tier', () => {
    expect(serviceTypes).toEqual(['compute', 'seal']);
    expect(isKnownServiceType('seal')).toBe(true);
    expect(isKnownServiceType('teleport')).toBe(false);
    expect(isKnownServiceType('constructor')).toBe(false);
    expect(tierRateLimitPerMinute).toEqual({ starter: 100, pro: 1000, enterprise: 0 });
  });
});

describe('validateOperation (seed phase 11)', () => {
  it('refuses for balance first, with the deposit still needed', () => {
    expect(validateOperation({ balanceUsdCents: 300, currentMonthChargedUsdCents: 0, maxMonthlyUsdCents: 100 }, 500)).toEqual({
      allowed: false,
      reason: 'insufficient_balance',
      details: { current_balance_usd_cents: 300, estimated_cost_usd_cents: 500, required_deposit_usd_cents: 200 },
    });
  });

  it('then for the monthly limit, with what is left of it', () => {
    expect(validateOperation({ balanceUsdCents: 1000, currentMonthChargedUsdCents: 700, maxMonthlyUsdCents: 1000 }, 500)).toEqual({
      allowed: false,
      reason: 'monthly_limit_exceeded',
      details: {
        max_monthly_usd_cents: 1000,
        current_month_charged_usd_cents: 700,
        estimated_cost_usd_cents: 500,
        remaining_authorization_usd_cents: 300,
      },
    });
  });

  it('allows when both hold, and a null limit is no limit', () => {
    expect(validateOperation({ balanceUsdCents: 500, currentMonthChargedUsdCents: 500, maxMonthlyUsdCents: 1000 }, 500)).toEqual({
      allowed: true,
    });
    expect(validateOperation({ balanceUsdCents: 500, currentMonthChargedUsdCents: 10 ** 9, maxMonthlyUsdCents: null }, 500)).toEqual({
      allowed: true,
    });
  });

  it('billing blocks on the balance before the limit, and never for nothing due', () => {
    const account = { balanceUsdCents: 10, currentMonthChargedUsdCents: 95, maxMonthlyUsdCents: 100 };
    expect(billingBlockFor(account, 11)).toBe('insufficient_balance');
    expect(billingBlockFor(account, 6)).toBe('monthly_limit_exceeded');
    expect(billingBlockFor(account, 5)).toBeNull();
    expect(billingBlockFor({ ...account, balanceUsdCents: 0 }, 0)).toBeNull();
  });
});

describe('vault CSV', () => {
  it('writes the header the proxy expects, then one line per key with the tier rate limit, each ending in a newline', () => {
    expect(vaultCsvHeader).toBe('customer_id,encrypted_key,rate_limit,tier,service_type');
    expect(
      renderVaultLines([
        { customerId: 'c1', encryptedKey: 'YWJj+/==', tier: 'enterprise', serviceType: 'seal' },
        { customerId: 'c2', encryptedKey: 'ZGVm', tier: 'starter', serviceType: 'compute' },
      ]),
    ).toBe('c1,YWJj+/==,0,enterprise,seal\nc2,ZGVm,100,starter,compute\n');
    expect(renderVaultLines([])).toBe('');
  });

  it('refuses a field that would need quoting rather than write a row a proxy could misread', () => {
    expect(() => renderVaultLines([{ customerId: 'c1', encryptedKey: 'a,b', tier: 'pro', serviceType: 'seal' }])).toThrow(/quoting/);
  });
});
