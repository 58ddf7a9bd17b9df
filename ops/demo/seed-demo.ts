/**
 * `npm run seed:demo`: fills a RUNNING instance with demo data through its HTTP API, so /docs, Bull Board
 * and the console have something to show: two demo customers (ada.demo@example.com, grace.demo@example.com,
 * password DEMO_PASSWORD or demo-password-123) with balances, services, substrates, relationships, jobs that
 * ended completed, failed and cancelled plus delayed ones, a batch, schedules (one paused), a webhook to a
 * loopback URL (when the instance allows private targets) and an API key; then, as the admin, a week of
 * usage through POST /admin/usage/ingest and a metering run. Running it again changes nothing that matters.
 *
 * Settings: ops/demo/demo-settings.ts (CHRYSALIS_BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD or DATA_DIR/secrets.json).
 */
import { ChrysalisClient, ChrysalisProblem, unwrap } from '@chrysalis/client';
import { loadDotEnv } from '../local-services.js';
import { demoSettings, DemoSettingsError } from './demo-settings.js';
import { ingestChunkRows, weekOfUsage, type UsageRow } from './demo-usage.js';
import { demoCustomers, seedCustomer, type SeededCustomer } from './seed-customer.js';

const say = (message: string) => process.stderr.write(`[seed:demo] ${message}\n`);

async function ingest(admin: ChrysalisClient, rows: UsageRow[]): Promise<number> {
  let accepted = 0;
  for (let start = 0; start < rows.length; start += ingestChunkRows) {
    const body = rows
      .slice(start, start + ingestChunkRows)
      .map((row) => JSON.stringify(row))
      .join('\n');
    const request = await admin.authorize(
      new Request(`${admin.baseUrl}/admin/usage/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body }),
    );
    const response = await admin.fetch(request);
    const answer = (await response.json()) as { accepted: number };
    if (!response.ok) throw ChrysalisProblem.from(response, answer);
    accepted += answer.accepted;
  }
  return accepted;
}

/** Usage older than a day means an earlier run ingested the week already (ingesting twice would double it). */
async function hasIngestedWeek(baseUrl: string, email: string, password: string): Promise<boolean> {
  const anonymous = new ChrysalisClient({ baseUrl });
  const tokens = await unwrap(anonymous.api.POST('/auth/login', { body: { email, password } }));
  const client = new ChrysalisClient({ baseUrl, token: tokens.access_token });
  const usage = await unwrap(
    client.api.GET('/billing/usage', { params: { query: { to: new Date(Date.now() - 25 * 3_600_000).toISOString(), limit: 1 } } }),
  );
  return usage.items.length > 0;
}

async function main(): Promise<void> {
  loadDotEnv();
  const settings = demoSettings();
  const anonymous = new ChrysalisClient({ baseUrl: settings.baseUrl });
  const health = await anonymous.api.GET('/health').catch((error: unknown) => {
    throw new DemoSettingsError(
      `no Chrysalis answers at ${settings.baseUrl} (${error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error)}): start it (npm start) or set CHRYSALIS_BASE_URL`,
    );
  });
  if (!health.response.ok) throw new DemoSettingsError(`${settings.baseUrl}/api/v1/health answered ${health.response.status}`);
  const adminTokens = await unwrap(
    anonymous.api.POST('/auth/login', { body: { email: settings.adminEmail, password: settings.adminPassword } }),
  );
  const admin = new ChrysalisClient({ baseUrl: settings.baseUrl, token: adminTokens.access_token });

  const seeded: SeededCustomer[] = [];
  for (const customer of demoCustomers) {
    const result = await seedCustomer(settings.baseUrl, customer, settings.demoPassword, settings.webhookUrl);
    seeded.push(result);
    say(
      `${result.email}: ${result.substrates.length} substrates, jobs ${Object.keys(result.jobs).join('/')}, batch ${result.batchId}, ${result.schedules.length} schedules, webhook ${result.webhook}`,
    );
  }

  if (await hasIngestedWeek(settings.baseUrl, seeded[0]!.email, settings.demoPassword)) {
    say('a week of usage is already there; not ingesting it again');
  } else {
    const rows = seeded.flatMap((customer, index) => [
      ...weekOfUsage(customer.customerId, 'compute', 40, 11 + index),
      ...weekOfUsage(customer.customerId, 'seal', 25, 101 + index),
    ]);
    say(`ingested ${await ingest(admin, rows)} request-log rows over the last 7 days`);
  }
  const metering = await admin.run({ type: 'metering', payload: {} }, { timeoutMs: 120_000 });
  if (metering.state !== 'completed') throw new Error(`the metering job ended ${metering.state}: ${metering.error ?? ''}`);
  say(`metering ${metering.id} completed; usage is in GET /billing/usage and the console`);
  process.stdout.write(
    JSON.stringify({ base_url: settings.baseUrl, password: 'DEMO_PASSWORD (default demo-password-123)', customers: seeded }, null, 2) +
      '\n',
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`seed:demo failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(error instanceof DemoSettingsError ? 2 : 1);
  },
);
