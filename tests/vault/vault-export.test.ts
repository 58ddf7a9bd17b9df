import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newApiKey } from '../../api/auth/credentials.js';
import { decryptSecret, encryptSecret, sha256 } from '../../lib/crypto.js';
import { createOrm, type Orm } from '../../db/orm.js';
import { vaultCsvHeader } from '../../jobs/vault-export/vault-csv.js';
import { vaultExportJob } from '../../jobs/vault-export/vault-export.job.js';
import { customerIdOf, runJob } from '../billing/back-office-fixtures.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let orm: Orm;
let request: ReturnType<typeof httpClient>;
let folder: string;
let vaultPath: string;

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'chrysalis-vault-'));
  vaultPath = path.join(folder, 'vault.csv');
  app = await startTestApp({ PLATFORM_SCHEDULES: 'false', VAULT_PATH: vaultPath });
  orm = await createOrm(app.config.databaseUrl, { poolMax: 5 });
  request = httpClient(app.baseUrl);
});

afterAll(async () => {
  await orm?.close();
  await app?.close();
  await rm(folder, { recursive: true, force: true });
});

interface VaultRow {
  customerId: string;
  encryptedKey: string;
  rateLimit: number;
  tier: string;
  serviceType: string;
  key: string;
}

/** Parses a vault file, failing on anything but a complete one: the header, whole rows, a final newline. */
function parseVault(content: string): VaultRow[] {
  expect(content.endsWith('\n'), 'the file ends with a newline').toBe(true);
  const [header, ...lines] = content.slice(0, -1).split('\n');
  expect(header).toBe(vaultCsvHeader);
  return lines.map((line) => {
    const fields = line.split(',');
    expect(fields).toHaveLength(5);
    const [customerId, encryptedKey, rateLimit, tier, serviceType] = fields as [string, string, string, string, string];
    return {
      customerId,
      encryptedKey,
      rateLimit: Number(rateLimit),
      tier,
      serviceType,
      key: decryptSecret(app.config.vaultKey, encryptedKey),
    };
  });
}

async function createKey(user: TestUser, serviceType: string, extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const response = await request('POST', '/api/v1/api-keys', {
    token: user.accessToken,
    body: { name: `${serviceType} key`, service_type: serviceType, ...extra },
  });
  expect(response.status, response.text).toBe(201);
  return { id: response.body.id, key: response.body.key };
}

describe('vault export', () => {
  it('writes a CSV that decrypts, row by row, to exactly the active keys of enabled, unsuspended services', async () => {
    const alice = await registerUser(request);
    const bob = await registerUser(request);
    const carol = await registerUser(request);
    const dave = await registerUser(request);
    const [aliceId, bobId, carolId] = (await Promise.all([alice, bob, carol].map((u) => customerIdOf(request, u.accessToken)))) as [
      string,
      string,
      string,
    ];
    await request('POST', '/api/v1/billing/deposits', { token: alice.accessToken, body: { amount_usd_cents: 3000 } });
    expect((await request('PUT', '/api/v1/services/seal', { token: alice.accessToken, body: { tier: 'pro', enabled: true } })).status).toBe(
      200,
    );

    const aliceCompute = await createKey(alice, 'compute');
    const aliceSeal = await createKey(alice, 'seal');
    const revoked = await createKey(alice, 'seal');
    expect((await request('DELETE', `/api/v1/api-keys/${revoked.id}`, { token: alice.accessToken })).status).toBe(204);
    const expired = await createKey(alice, 'compute', { expires_at: new Date(Date.now() + 3600_000).toISOString() });
    await app.sql(`update api_keys set expires_at = now() - interval '1 second' where id = $1`, [expired.id]);
    const bobCompute = await createKey(bob, 'compute');
    await createKey(bob, 'seal'); // bob never enabled seal
    await createKey(carol, 'compute');
    await app.sql(`update service_instances set suspended_reason = 'insufficient_balance' where customer_id = $1`, [carolId]);
    await createKey(dave, 'compute');
    expect(
      (await request('PUT', '/api/v1/services/compute', { token: dave.accessToken, body: { tier: 'starter', enabled: false } })).status,
    ).toBe(200);

    const result = await runJob(vaultExportJob, app, orm);
    const content = await readFile(vaultPath, 'utf8');
    const rows = parseVault(content);
    const expected = [
      { customerId: aliceId, key: aliceCompute.key, rateLimit: 100, tier: 'starter', serviceType: 'compute' },
      { customerId: aliceId, key: aliceSeal.key, rateLimit: 1000, tier: 'pro', serviceType: 'seal' },
      { customerId: bobId, key: bobCompute.key, rateLimit: 100, tier: 'starter', serviceType: 'compute' },
    ];
    const sortKey = (row: { customerId: string; serviceType: string }) => `${row.customerId}/${row.serviceType}`;
    expect(rows.map(({ encryptedKey: _e, ...row }) => row).sort((a, b) => sortKey(a).localeCompare(sortKey(b)))).toEqual(
      expected.sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
    );
    for (const row of rows) {
      const [stored] = await app.sql<{ encrypted_key: string }>(`select encrypted_key from api_keys where key_hash = $1`, [
        sha256(row.key),
      ]);
      expect(row.encryptedKey).toBe(stored!.encrypted_key);
    }

    const digest = createHash('sha256').update(content).digest('hex');
    expect(result).toMatchObject({ path: vaultPath, rows: 3, sha256: digest, bytes: Buffer.byteLength(content) });
    const [recorded] = await app.sql(`select path, row_count, sha256, bytes from vault_exports where id = $1`, [result.export_id]);
    expect(recorded).toEqual({ path: vaultPath, row_count: 3, sha256: digest, bytes: Buffer.byteLength(content) });
    expect((await stat(vaultPath)).mode & 0o777).toBe(0o600);
  });

  it('a reader polling VAULT_PATH during repeated exports only ever sees complete files that decrypt to live keys', async () => {
    const customerId = randomUUID();
    await app.sql(`insert into customers (id, name) values ($1, 'bulk')`, [customerId]);
    await app.sql(`insert into service_instances (customer_id, service_type, tier, enabled) values ($1, 'seal', 'enterprise', true)`, [
      customerId,
    ]);
    const issued = new Map<string, string>(); // key → id
    const issue = async (count: number) => {
      const keys = Array.from({ length: count }, () => newApiKey());
      const values = keys.map((key) => ({ id: randomUUID(), key, hash: sha256(key), encrypted: encryptSecret(app.config.vaultKey, key) }));
      await app.sql(
        `insert into api_keys (id, customer_id, name, service_type, prefix, key_hash, encrypted_key)
         select (v->>'id')::uuid, $1, 'bulk', 'seal', left(v->>'key', 12), v->>'hash', v->>'encrypted' from jsonb_array_elements($2::jsonb) v`,
        [customerId, JSON.stringify(values)],
      );
      for (const value of values) issued.set(value.key, value.id);
    };
    await issue(400);

    let exporting = true;
    const seen = new Set<string>();
    let reads = 0;
    const reader = (async () => {
      while (exporting) {
        let content: string;
        try {
          content = await readFile(vaultPath, 'utf8');
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw error;
        }
        reads += 1;
        const digest = createHash('sha256').update(content).digest('hex');
        if (seen.has(digest)) continue;
        seen.add(digest);
        for (const row of parseVault(content)) {
          if (row.customerId === customerId) expect(issued.has(row.key), 'every bulk row decrypts to a key that was issued').toBe(true);
        }
      }
    })();

    const exported: string[] = [];
    try {
      for (let round = 0; round < 20; round++) {
        await issue(20);
        const revoke = [...issued.values()].slice(round * 10, round * 10 + 10);
        await app.sql(`update api_keys set revoked_at = now() where id = any($1::uuid[])`, [revoke]);
        exported.push((await runJob(vaultExportJob, app, orm)).sha256);
      }
    } finally {
      exporting = false;
      await reader;
    }

    expect(reads).toBeGreaterThan(20);
    const recorded = new Set((await app.sql<{ sha256: string }>(`select sha256 from vault_exports`)).map((row) => row.sha256));
    for (const digest of seen) expect(recorded.has(digest), 'every file a reader saw is one a finished export recorded').toBe(true);
    expect(new Set(exported).size).toBe(20);

    // The last file holds exactly the live bulk keys.
    const live = new Set(
      (
        await app.sql<{ key_hash: string }>(`select key_hash from api_keys where customer_id = $1 and revoked_at is null`, [customerId])
      ).map((row) => row.key_hash),
    );
    const final = parseVault(await readFile(vaultPath, 'utf8')).filter((row) => row.customerId === customerId);
    expect(new Set(final.map((row) => sha256(row.key)))).toEqual(live);
    expect(final.every((row) => row.rateLimit === 0 && row.tier === 'enterprise')).toBe(true);
    expect((await readdir(folder)).filter((name) => name !== 'vault.csv')).toEqual([]);
  });

  it('streams a vault of several read batches whole, and a failure part-way through leaves the last complete file in place', async () => {
    // The export reads its keys 2,000 at a time: 4,500 keys span three batches, the last a partial one.
    const customerId = randomUUID();
    await app.sql(`insert into customers (id, name) values ($1, 'many keys')`, [customerId]);
    await app.sql(`insert into service_instances (customer_id, service_type, tier, enabled) values ($1, 'compute', 'pro', true)`, [
      customerId,
    ]);
    const keys = Array.from({ length: 4500 }, () => newApiKey());
    const values = keys.map((key) => ({ id: randomUUID(), key, hash: sha256(key), encrypted: encryptSecret(app.config.vaultKey, key) }));
    await app.sql(
      `insert into api_keys (id, customer_id, name, service_type, prefix, key_hash, encrypted_key)
       select (v->>'id')::uuid, $1, 'many', 'compute', left(v->>'key', 12), v->>'hash', v->>'encrypted' from jsonb_array_elements($2::jsonb) v`,
      [customerId, JSON.stringify(values)],
    );
    const [live] = await app.sql<{ count: number }>(
      `select count(*)::int as count from api_keys k join service_instances s using (customer_id, service_type)
        where k.revoked_at is null and (k.expires_at is null or k.expires_at > now()) and s.enabled and s.suspended_reason is null`,
    );

    const result = await runJob(vaultExportJob, app, orm);
    const content = await readFile(vaultPath, 'utf8');
    const rows = parseVault(content);
    expect(result).toMatchObject({
      rows: live!.count,
      bytes: Buffer.byteLength(content),
      sha256: createHash('sha256').update(content).digest('hex'),
    });
    const ours = rows.filter((row) => row.customerId === customerId);
    expect(ours.map((row) => row.key).sort()).toEqual([...keys].sort());
    expect(new Set(rows.map((row) => row.encryptedKey)).size, 'no key is written twice across batches').toBe(rows.length);
    const order = rows.map((row) => `${row.customerId}/${row.serviceType}`);
    expect(order, 'keys come in customer, then service order').toEqual([...order].sort());

    // A key whose stored ciphertext would need CSV quoting sorts last: the export fails after two batches are written.
    const lastCustomer = 'ffffffff-ffff-4fff-bfff-ffffffffffff';
    await app.sql(`insert into customers (id, name) values ($1, 'broken key')`, [lastCustomer]);
    await app.sql(`insert into service_instances (customer_id, service_type, tier, enabled) values ($1, 'compute', 'starter', true)`, [
      lastCustomer,
    ]);
    await app.sql(
      `insert into api_keys (id, customer_id, name, service_type, prefix, key_hash, encrypted_key)
       values ($1, $2, 'broken', 'compute', 'sk_live_brok', $3, 'not,base64')`,
      [randomUUID(), lastCustomer, sha256(newApiKey())],
    );
    try {
      await expect(runJob(vaultExportJob, app, orm)).rejects.toThrow(/quoting/);
      expect(await readFile(vaultPath, 'utf8'), 'the last complete vault is still the one in place').toBe(content);
      expect(
        (await readdir(folder)).filter((name) => name !== 'vault.csv'),
        'the part-written temp file is gone',
      ).toEqual([]);
      const [recorded] = await app.sql<{ count: number }>(`select count(*)::int as count from vault_exports where sha256 = $1`, [
        result.sha256,
      ]);
      expect(recorded!.count).toBe(1);
    } finally {
      await app.sql(`delete from api_keys where customer_id = $1`, [lastCustomer]);
    }
    expect((await runJob(vaultExportJob, app, orm)).rows).toBe(live!.count);
  });

  it('an export stopped part-way (its job cancelled, the worker shutting down) leaves the last complete vault in place', async () => {
    const before = await runJob(vaultExportJob, app, orm);
    const content = await readFile(vaultPath, 'utf8');
    const stopping = new AbortController();
    stopping.abort(new Error('the worker is shutting down'));
    await expect(runJob(vaultExportJob, app, orm, { signal: stopping.signal })).rejects.toThrow(/shutting down/);
    expect(await readFile(vaultPath, 'utf8')).toBe(content);
    expect(createHash('sha256').update(content).digest('hex')).toBe(before.sha256);
    expect(
      (await readdir(folder)).filter((name) => name !== 'vault.csv'),
      'the part-written temp file is gone',
    ).toEqual([]);
  });

  it('two exports at once each replace the file whole', async () => {
    const results = await Promise.all([runJob(vaultExportJob, app, orm), runJob(vaultExportJob, app, orm)]);
    const content = await readFile(vaultPath, 'utf8');
    parseVault(content);
    expect(results.map((r) => r.sha256)).toContain(createHash('sha256').update(content).digest('hex'));
    expect((await readdir(folder)).filter((name) => name !== 'vault.csv')).toEqual([]);
  });
});
