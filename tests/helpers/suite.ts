import { afterAll, beforeAll } from 'vitest';
import { registerUser, type TestUser } from './accounts.js';
import { httpClient } from './http.js';
import { startTestApp, type TestApp } from './test-app.js';

export interface Suite {
  app: TestApp;
  request: ReturnType<typeof httpClient>;
  /** Users registered (and logged in) for this file, in order. */
  users: TestUser[];
}

/**
 * The usual file set-up: an isolated app (own database and queue prefix), optionally with in-process
 * workers, and `users` registered users; closed after the file. Read the fields inside tests or hooks.
 */
export function useTestApp(options: { env?: Record<string, string>; workers?: boolean; users?: number } = {}): Suite {
  const suite = { users: [] as TestUser[] } as Suite;
  beforeAll(async () => {
    suite.app = await startTestApp(options.env);
    if (options.workers) await suite.app.startWorkers();
    suite.request = httpClient(suite.app.baseUrl);
    for (let i = 0; i < (options.users ?? 0); i++) suite.users.push(await registerUser(suite.request));
  });
  afterAll(async () => {
    await suite.app?.close();
  });
  return suite;
}
