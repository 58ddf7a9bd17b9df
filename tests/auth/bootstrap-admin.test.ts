import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAdmin } from '../../api/auth/bootstrap-admin.js';
import { loginAdmin, registerUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { jwtClaims } from './expect-problem.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;

beforeAll(async () => {
  app = await startTestApp();
  request = httpClient(app.baseUrl);
});

afterAll(async () => {
  await app?.close();
});

/** The app's deps with another bootstrap admin configured. */
const withAdmin = (adminEmail: string) => ({ ...app.deps, config: { ...app.config, adminEmail } });

describe('ensureAdmin', () => {
  it('creates the bootstrap admin at start-up, who logs in with role admin', async () => {
    const token = await loginAdmin(request);
    expect(jwtClaims(token).role).toBe('admin');
    const me = await request('GET', '/api/v1/auth/me', { token });
    expect(me.body).toMatchObject({ email: 'admin@example.test', role: 'admin', tos_version_accepted: '1.0.0', tos_current: true });
    expect(
      await app.sql('select service_type, tier, enabled from service_instances where customer_id = $1', [me.body.customer_id]),
    ).toEqual([{ service_type: 'compute', tier: 'starter', enabled: true }]);
  });

  it('does nothing when the admin already exists', async () => {
    const before = await app.sql('select id, password_hash from users where email = $1', ['admin@example.test']);
    await ensureAdmin(app.deps);
    expect(await app.sql('select id, password_hash from users where email = $1', ['admin@example.test'])).toEqual(before);
  });

  it('survives two concurrent calls for a new admin and creates exactly one', async () => {
    const deps = withAdmin('racing-admin@example.test');
    await expect(Promise.all([ensureAdmin(deps), ensureAdmin(deps)])).resolves.toBeDefined();
    const users = await app.sql<{ customer_id: string; role: string }>('select customer_id, role from users where email = $1', [
      'racing-admin@example.test',
    ]);
    expect(users).toEqual([{ customer_id: expect.any(String), role: 'admin' }]);
    expect(await app.sql('select id from customers where name = $1', ['racing-admin@example.test'])).toHaveLength(1);
  });

  it('survives two concurrent calls for an existing admin', async () => {
    await expect(Promise.all([ensureAdmin(app.deps), ensureAdmin(app.deps)])).resolves.toBeDefined();
  });

  it('records acceptance of the current TOS version for an admin who has not accepted it', async () => {
    const [admin] = await app.sql<{ id: string }>('select id from users where email = $1', ['admin@example.test']);
    await app.sql('delete from tos_acceptances where user_id = $1', [admin!.id]);
    await ensureAdmin(app.deps);
    expect(await app.sql('select version from tos_acceptances where user_id = $1', [admin!.id])).toEqual([{ version: '1.0.0' }]);
    const token = await loginAdmin(request);
    expect((await request('GET', '/api/v1/jobs', { token })).status).toBe(200);
  });

  it('does not promote a plain user who holds the admin email', async () => {
    const user = await registerUser(request);
    await ensureAdmin(withAdmin(user.email));
    expect(await app.sql('select role from users where email = $1', [user.email])).toEqual([{ role: 'user' }]);
  });
});
