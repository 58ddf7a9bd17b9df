import type { VaultKeyRow } from '../../db/repositories/vault.js';
import { tierRateLimitPerMinute } from '../billing/pricing.js';

export const vaultCsvHeader = 'customer_id,encrypted_key,rate_limit,tier,service_type';

/** Every field the vault holds is an id, base64, a number or a lowercase name: none needs CSV quoting. */
const safeField = /^[A-Za-z0-9+/=_.-]*$/;

function field(value: string | number): string {
  const text = String(value);
  if (!safeField.test(text)) throw new Error(`vault field ${JSON.stringify(text.slice(0, 40))} would need CSV quoting`);
  return text;
}

/**
 * The vault CSV the edge proxy reads (seed phase 16, SPEC §6) is `vaultCsvHeader` and a newline, then one
 * line per active key with the tier's rate limit in requests per minute (0 = unlimited). Every line ends in
 * `\n`, the last one too, so a reader can tell a whole file from a cut one. These are the lines of `rows`.
 */
export function renderVaultLines(rows: readonly VaultKeyRow[]): string {
  let lines = '';
  for (const row of rows) {
    lines += `${[
      field(row.customerId),
      field(row.encryptedKey),
      field(tierRateLimitPerMinute[row.tier] ?? 0),
      field(row.tier),
      field(row.serviceType),
    ].join(',')}\n`;
  }
  return lines;
}
