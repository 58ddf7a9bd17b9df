import { randomUUID } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { PasswordHasher, type PasswordHasherOptions } from './password-hasher.js';

/** bcrypt cost factor for stored passwords unless PASSWORD_HASH_COST says otherwise (tests use 4). */
export const bcryptCost = 12;
/** Passwords are measured in UTF-8 bytes: bcrypt reads at most 72 and would silently ignore the rest. */
export const minPasswordBytes = 8;
export const maxPasswordBytes = 72;

export const passwordBytes = (password: string): number => Buffer.byteLength(password, 'utf8');

/**
 * Compared against when the account is unknown: a cost-12 hash of random bytes nobody kept. Fixed rather
 * than made on first use, so even the first unknown-email login takes exactly one comparison. Another cost
 * makes its own at once (usePasswordHasher), so an unknown email costs what a known one does.
 */
const fixedDummyHash = '$2b$12$rMUfEvbKO1YsvEK.BKlYh.q2r7QvhjJamsgm32PeIeV89jvA8FMem';
let dummyHash = fixedDummyHash;

/**
 * This process's bcrypt pool (one per process: the routes, the admin pages and the bootstrap admin share it).
 * The API sets it from its configuration (usePasswordHasher); anything else gets one with the defaults on first use.
 */
let current: PasswordHasher | null = null;
const hasher = (): PasswordHasher => (current ??= new PasswordHasher());
let cost = bcryptCost;

/**
 * Makes a pool with these options this process's hasher (the one before finishes what it holds and idles out),
 * hashing new passwords at `cost` (default 12).
 */
export function usePasswordHasher(options: PasswordHasherOptions & { cost?: number }): PasswordHasher {
  const { cost: wanted = bcryptCost, ...poolOptions } = options;
  if (wanted !== cost) {
    cost = wanted;
    dummyHash = wanted === bcryptCost ? fixedDummyHash : bcrypt.hashSync(randomUUID(), wanted);
  }
  current = new PasswordHasher(poolOptions);
  return current;
}

/** Closes `pool`; if it was this process's hasher, the next hash starts one with the defaults. */
export async function closePasswordHasher(pool: PasswordHasher): Promise<void> {
  if (current === pool) current = null;
  await pool.close();
}

/** A bcrypt hash of `password`, computed off the event loop; 503 (ProblemError) when the hasher's queue is full. */
export const hashPassword = (password: string): Promise<string> => hasher().hash(password, cost);

/**
 * Checks a login password. Always runs exactly one bcrypt comparison — against a dummy hash when there is
 * no account — so response time does not reveal which emails are registered. Off the event loop, like hashPassword.
 */
export async function verifyPassword(password: string, storedHash: string | null | undefined): Promise<boolean> {
  const matches = await hasher().compare(password, storedHash ?? dummyHash);
  return matches && storedHash != null && passwordBytes(password) <= maxPasswordBytes;
}
