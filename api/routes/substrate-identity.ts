import { createHash } from 'node:crypto';

/**
 * A substrate's 64-bit identity: the first 8 bytes of SHA-256(owner, type, expression or value).
 * The id is `0x` + 16 hex digits; the identity is the same number as a decimal string.
 */
export function substrateIdentity(customerId: string, expressionType: string, source: string): { id: string; identity: string } {
  const digest = createHash('sha256').update(`${customerId}\u0000${expressionType}\u0000${source}`).digest();
  const hex = digest.subarray(0, 8).toString('hex');
  return { id: `0x${hex}`, identity: BigInt(`0x${hex}`).toString(10) };
}
