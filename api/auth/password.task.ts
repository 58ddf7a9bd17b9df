import bcrypt from 'bcryptjs';

/**
 * The password hasher's Piscina task (api/auth/password-hasher.ts): a pure entry module, bcryptjs only.
 * A cost-12 bcrypt is ~250 ms of CPU that would otherwise hold the API's event loop (20 failed logins
 * had pushed /health p95 to 2.2 s).
 */

export interface HashInput {
  password: string;
  cost: number;
}

export interface CompareInput {
  password: string;
  hash: string;
}

/** bcrypt hash of `password` at `cost`. */
export const hash = ({ password, cost }: HashInput): Promise<string> => bcrypt.hash(password, cost);

/** Whether `password` matches `hash`. */
export const compare = ({ password, hash: stored }: CompareInput): Promise<boolean> => bcrypt.compare(password, stored);

/** Piscina loads a task module through its default export (without one, a `.ts` module fails to load under tsx). */
export default hash;
