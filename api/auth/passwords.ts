import bcrypt from 'bcryptjs';

/** bcrypt cost factor for stored passwords. */
export const bcryptCost = 12;
/** Passwords are measured in UTF-8 bytes: bcrypt reads at most 72 and would silently ignore the rest. */
export const minPasswordBytes = 8;
export const maxPasswordBytes = 72;

export const passwordBytes = (password: string): number => Buffer.byteLength(password, 'utf8');

export const hashPassword = (password: string): Promise<string> => bcrypt.hash(password, bcryptCost);

/**
 * Compared against when the account is unknown: a cost-12 hash of random bytes nobody kept. Fixed rather
 * than made on first use, so even the first unknown-email login takes exactly one comparison.
 */
const dummyHash = '$2b$12$rMUfEvbKO1YsvEK.BKlYh.q2r7QvhjJamsgm32PeIeV89jvA8FMem';

/**
 * Checks a login password. Always runs exactly one bcrypt comparison — against a dummy hash when there is
 * no account — so response time does not reveal which emails are registered.
 */
export async function verifyPassword(password: string, storedHash: string | null | undefined): Promise<boolean> {
  const matches = await bcrypt.compare(password, storedHash ?? dummyHash);
  return matches && storedHash != null && passwordBytes(password) <= maxPasswordBytes;
}
