import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login, registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { expectProblem } from './expect-problem.js';

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;

const refresh = (refreshToken: string) => request('POST', '/api/v1/auth/refresh', { body: { refresh_token: refreshToken } });
const logout = (refreshToken: string) => request('POST', '/api/v1/auth/logout', { body: { refresh_token: refreshToken } });
/** A fresh session (refresh-token family) for alice. */
const newSession = () => login(request, alice.email, alice.password);

beforeAll(async () => {
  app = await startTestApp();
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
});

afterAll(async () => {
  await app?.close();
});

describe('POST /auth/refresh', () => {
  it('rotates the refresh token: answers the login shape with a new refresh token and a working access token', async () => {
    const session = await newSession();
    const response = await refresh(session.refreshToken);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      access_token: expect.any(String),
      refresh_token: expect.stringMatching(/^rt_/),
      token_type: 'bearer',
      expires_in: 3600,
    });
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.body.refresh_token).not.toBe(session.refreshToken);
    expect((await request('GET', '/api/v1/auth/me', { token: response.body.access_token })).status).toBe(200);
    // The new token continues the chain.
    expect((await refresh(response.body.refresh_token)).status).toBe(200);
  });

  it('keeps one family per login and marks the old token rotated', async () => {
    const session = await newSession();
    const rotated = await refresh(session.refreshToken);
    const rows = await app.sql<{ family_id: string; rotated: boolean; revoked: boolean }>(
      `select family_id, rotated_at is not null as rotated, revoked_at is not null as revoked from refresh_tokens
        where token_hash in (encode(sha256($1::bytea), 'hex'), encode(sha256($2::bytea), 'hex')) order by created_at`,
      [session.refreshToken, rotated.body.refresh_token],
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]?.family_id).toBe(rows[1]?.family_id);
    expect(rows.map((row) => [row.rotated, row.revoked])).toEqual([
      [true, false],
      [false, false],
    ]);
  });

  it('detects reuse of a rotated token: answers 401 and revokes the family, so the new token stops working too', async () => {
    const session = await newSession();
    const rotated = await refresh(session.refreshToken);
    expect(rotated.status).toBe(200);
    expectProblem(await refresh(session.refreshToken), 401, 'unauthorized');
    expectProblem(await refresh(rotated.body.refresh_token), 401, 'unauthorized');
  });

  it("leaves the user's other sessions alone when one family is revoked for reuse", async () => {
    const stolen = await newSession();
    const other = await newSession();
    await refresh(stolen.refreshToken);
    await refresh(stolen.refreshToken);
    expect((await refresh(other.refreshToken)).status).toBe(200);
  });

  it('lets only one of two concurrent refreshes with the same token win, and treats the other as reuse', async () => {
    const session = await newSession();
    const answers = await Promise.all([refresh(session.refreshToken), refresh(session.refreshToken)]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 401]);
    const winner = answers.find((answer) => answer.status === 200)!;
    expectProblem(await refresh(winner.body.refresh_token), 401, 'unauthorized');
  });

  it('rejects an expired refresh token with 401', async () => {
    const session = await newSession();
    await app.sql(
      `update refresh_tokens set expires_at = now() - interval '1 second' where token_hash = encode(sha256($1::bytea), 'hex')`,
      [session.refreshToken],
    );
    expectProblem(await refresh(session.refreshToken), 401, 'unauthorized');
  });

  it('rejects an unknown refresh token with 401', async () => {
    expectProblem(await refresh('rt_this-token-was-never-issued'), 401, 'unauthorized');
  });

  it('rejects an access token offered as a refresh token with 401', async () => {
    expectProblem(await refresh(alice.accessToken), 401, 'unauthorized');
  });

  it('rejects a missing refresh_token with 400 naming body.refresh_token', async () => {
    expectProblem(await request('POST', '/api/v1/auth/refresh', { body: {} }), 400, 'validation', ['body.refresh_token']);
  });

  it('rejects a refresh_token that is not a string with 400', async () => {
    expectProblem(await request('POST', '/api/v1/auth/refresh', { body: { refresh_token: 42 } }), 400, 'validation', [
      'body.refresh_token',
    ]);
  });

  it('rejects malformed JSON with 400 problem+json', async () => {
    expectProblem(await request('POST', '/api/v1/auth/refresh', { rawBody: '{refresh_token: nope}' }), 400, 'validation');
  });
});

describe('POST /auth/logout', () => {
  it('answers 204 and revokes the token, which can no longer refresh', async () => {
    const session = await newSession();
    const response = await logout(session.refreshToken);
    expect(response.status).toBe(204);
    expect(response.text).toBe('');
    expectProblem(await refresh(session.refreshToken), 401, 'unauthorized');
  });

  it('ends the whole session: a token rotated earlier in the family no longer counts as live either', async () => {
    const session = await newSession();
    const rotated = await refresh(session.refreshToken);
    expect((await logout(rotated.body.refresh_token)).status).toBe(204);
    expectProblem(await refresh(rotated.body.refresh_token), 401, 'unauthorized');
    const [open] = await app.sql<{ count: string }>(
      `select count(*) from refresh_tokens where revoked_at is null and family_id =
         (select family_id from refresh_tokens where token_hash = encode(sha256($1::bytea), 'hex'))`,
      [session.refreshToken],
    );
    expect(open?.count).toBe('0');
  });

  it('answers 204 for an unknown token', async () => {
    expect((await logout('rt_never-issued')).status).toBe(204);
  });

  describe('beside a refresh that is still adding the next token', () => {
    /** Session-level lock the trigger below waits on: while the test holds it, a refresh of bob's tokens stops at its insert, its old token already marked rotated. */
    const holdLock = 4_242_017;
    let holder: pg.Client;
    let bob: TestUser;

    beforeAll(async () => {
      bob = await registerUser(request);
      const [me] = await app.sql<{ id: string }>(`select id from users where lower(email) = lower($1)`, [bob.email]);
      await app.sql(`
        create function hold_bob_refresh() returns trigger language plpgsql as $$
        begin
          if new.user_id = '${me!.id}' then perform pg_advisory_xact_lock_shared(${holdLock}); end if;
          return new;
        end $$`);
      await app.sql(`create trigger hold_bob_refresh before insert on refresh_tokens for each row execute function hold_bob_refresh()`);
      holder = new pg.Client({ connectionString: app.config.databaseUrl });
      await holder.connect();
    });

    afterAll(async () => {
      await app.sql(`drop trigger if exists hold_bob_refresh on refresh_tokens`);
      await holder?.end();
    });

    /** Two statements touching refresh tokens wait on locks: the held refresh and the revocation behind it. */
    const bothWaiting = async () => {
      const [waiting] = await app.sql<{ count: string }>(
        `select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query ilike '%refresh_tokens%'`,
      );
      return Number(waiting?.count) >= 2;
    };

    /** Starts a refresh of `token` and holds it at its insert, runs `revoke` beside it, then lets both end. */
    async function refreshRacing(token: string, revoke: () => Promise<unknown>) {
      await holder.query('select pg_advisory_lock($1)', [holdLock]);
      let refreshed: Promise<Awaited<ReturnType<typeof refresh>>>;
      let revoked: Promise<unknown>;
      try {
        refreshed = refresh(token);
        await waitFor(async () => {
          const [held] = await app.sql<{ count: string }>(
            `select count(*) from pg_stat_activity where datname = current_database() and wait_event = 'advisory' and query ilike '%insert into refresh_tokens%'`,
          );
          return Number(held?.count) >= 1;
        });
        revoked = revoke();
        await waitFor(bothWaiting);
      } finally {
        await holder.query('select pg_advisory_unlock($1)', [holdLock]);
      }
      const [answer] = await Promise.all([refreshed, revoked]);
      return answer;
    }

    it('a logout revokes the token the refresh added too', async () => {
      const session = await login(request, bob.email, bob.password);
      const refreshed = await refreshRacing(session.refreshToken, async () =>
        expect((await logout(session.refreshToken)).status).toBe(204),
      );
      expect(refreshed.status).toBe(200);
      expectProblem(await refresh(refreshed.body.refresh_token), 401, 'unauthorized');
    });

    it("a replayed rotated token's revocation reaches the token the refresh added too", async () => {
      const session = await login(request, bob.email, bob.password);
      const next = await refresh(session.refreshToken);
      expect(next.status).toBe(200);
      const refreshed = await refreshRacing(next.body.refresh_token, async () =>
        expectProblem(await refresh(session.refreshToken), 401, 'unauthorized'),
      );
      expect(refreshed.status).toBe(200);
      expectProblem(await refresh(refreshed.body.refresh_token), 401, 'unauthorized');
    });
  });

  it('answers 204 when logging out twice', async () => {
    const session = await newSession();
    expect((await logout(session.refreshToken)).status).toBe(204);
    expect((await logout(session.refreshToken)).status).toBe(204);
  });

  it('rejects an unknown field with 400 naming it', async () => {
    const response = await request('POST', '/api/v1/auth/logout', { body: { refresh_token: 'rt_x', everywhere: true } });
    expectProblem(response, 400, 'validation', ['body.everywhere']);
  });
});
