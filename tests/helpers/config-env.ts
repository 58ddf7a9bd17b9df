import { randomBytes } from 'node:crypto';

/** What loadConfig needs to reach its services in a unit test (nothing connects). */
export const servicesEnv = {
  DATABASE_URL: 'postgresql://127.0.0.1:5432/unused',
  REDIS_URL: 'redis://127.0.0.1:6379',
  DATA_DIR: '.data/test',
};

/** NODE_ENV=production with the secrets production requires, fresh each import. */
export const productionEnv = {
  NODE_ENV: 'production',
  JWT_SECRET: randomBytes(32).toString('hex'),
  METRICS_TOKEN: randomBytes(24).toString('hex'),
  VAULT_KEY: randomBytes(32).toString('hex'),
  ADMIN_EMAIL: 'admin@example.test',
  ADMIN_PASSWORD: 'admin-password-123',
};
