import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config.js';
import { productionEnv, servicesEnv } from '../helpers/config-env.js';
import { closePasswordHasher, hashPassword, usePasswordHasher, verifyPassword } from '../../api/auth/passwords.js';

const services = servicesEnv;
const productionSecrets = productionEnv;

describe('PASSWORD_HASH_COST', () => {
  it('defaults to 12 and refuses a test-only cost in production, naming the variable', () => {
    expect(loadConfig({ ...services, ...productionSecrets }).passwordHashCost).toBe(12);
    expect(loadConfig({ ...services, NODE_ENV: 'test', PASSWORD_HASH_COST: '4' }).passwordHashCost).toBe(4);
    expect(() => loadConfig({ ...services, ...productionSecrets, PASSWORD_HASH_COST: '4' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...services, ...productionSecrets, PASSWORD_HASH_COST: '9' })).toThrow(/PASSWORD_HASH_COST/);
    expect(() => loadConfig({ ...services, PASSWORD_HASH_COST: '3' })).toThrow(/PASSWORD_HASH_COST/);
  });

  it('hashes new passwords at the configured cost, and still verifies hashes stored at another', async () => {
    const pool = usePasswordHasher({ threads: 1, cost: 4 });
    try {
      const hash = await hashPassword('correct horse battery');
      expect(bcrypt.getRounds(hash)).toBe(4);
      expect(await verifyPassword('correct horse battery', hash)).toBe(true);
      expect(await verifyPassword('wrong horse battery', hash)).toBe(false);
      expect(await verifyPassword('correct horse battery', bcrypt.hashSync('correct horse battery', 10))).toBe(true);
      expect(await verifyPassword('anything at all', null)).toBe(false);
    } finally {
      await closePasswordHasher(pool);
      await closePasswordHasher(usePasswordHasher({ cost: 12 }));
    }
  });
});
