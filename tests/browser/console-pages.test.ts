import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginAdmin, registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { Receiver } from '../webhooks/receiver.js';
import { launchChromium } from './chromium.js';
import { consolePages, consoleScreenshots } from './console-helpers.js';

/**
 * The console's schedules, webhooks and deliveries, job deliveries and admin failure-groups and customers
 * pages in a real Chromium (SPEC §9), signed in through the sign-in form. Every API call the pages make goes
 * through console.js's helpers, so these tests do not care how the session is kept.
 */
let app: TestApp;
let request: ReturnType<typeof httpClient>;
let browser: Browser;
let receiver: Receiver;
let alice: TestUser;
let aliceCustomerId: string;
let bob: TestUser;
let carol: TestUser;
let carolCustomerId: string;
let adminToken: string;
/** Alice's completed job, its webhook endpoint and the delivery of its job.completed event. */
let completedJobId: string;
let endpointId: string;
let deliveryId: string;
let quietEndpointId: string;

const { problems, newPage, signIn, shot } = consolePages(
  () => browser,
  () => app.baseUrl,
);
/** The page at a phone's width: nothing wider than the screen (no sideways scrolling), and its screenshot. */
async function phoneShot(page: Page, name: string): Promise<void> {
  const before = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  expect(await page.evaluate<number>('document.documentElement.scrollWidth'), name).toBeLessThanOrEqual(390);
  await shot(page, name);
  if (before) await page.setViewportSize(before);
}
const api = (method: string, path: string, token: string, body?: unknown) => request(method, `/api/v1${path}`, { token, body });
const listDeliveries = async (token: string, id: string) => (await api('GET', `/webhooks/${id}/deliveries`, token)).body.items;

/** `count` invokes of `expression` whose substrate is deleted before a worker runs them: they fail with "substrate … not found". */
async function failingInvokes(user: TestUser, expression: string, count: number) {
  await app.stopWorkers();
  const created = await api('POST', '/substrates', user.accessToken, { expression_type: 'expression', expression });
  expect(created.status).toBe(201);
  const substrateId: string = created.body.substrate_id;
  const jobIds: string[] = [];
  for (let i = 0; i < count; i++) {
    const submitted = await api('POST', `/substrates/${substrateId}/invoke`, user.accessToken, { parameters: { x: 10 + i, y: 2 } });
    expect(submitted.status).toBe(202);
    jobIds.push(submitted.body.id);
  }
  expect((await api('DELETE', `/substrates/${substrateId}`, user.accessToken)).status).toBe(204);
  await app.startWorkers({ finishedJobTrimIntervalMs: 0 });
  for (const id of jobIds) await waitFor(async () => (await api('GET', `/jobs/${id}`, user.accessToken)).body.state === 'failed', 30_000);
  return { jobIds, substrateId };
}

beforeAll(async () => {
  mkdirSync(consoleScreenshots, { recursive: true });
  app = await startTestApp();
  request = httpClient(app.baseUrl);
  receiver = await Receiver.start();
  alice = await registerUser(request);
  bob = await registerUser(request);
  carol = await registerUser(request);
  aliceCustomerId = (await api('GET', '/auth/me', alice.accessToken)).body.customer_id;
  carolCustomerId = (await api('GET', '/auth/me', carol.accessToken)).body.customer_id;
  adminToken = await loginAdmin(request);
  await app.startWorkers({ finishedJobTrimIntervalMs: 0 });
  browser = await launchChromium();
}, 15 * 60_000);

afterAll(async () => {
  await browser?.close();
  await receiver?.close();
  await app?.close();
});

describe('the console pages for schedules, webhooks, a job and the operators', () => {
  let page: Page;

  it('lists schedules with their next run and pauses then resumes one', async () => {
    const substrate = await api('POST', '/substrates', alice.accessToken, { expression_type: 'expression', expression: 'x * 2' });
    for (const body of [
      { name: 'nightly-report', cron: '0 3 * * *', job: { type: 'invoke', payload: { substrate_id: substrate.body.substrate_id } } },
      {
        name: 'heartbeat',
        cron: '30 4 * * 1',
        tz: 'Europe/Paris',
        job: { type: 'invoke', payload: { substrate_id: substrate.body.substrate_id } },
      },
    ])
      expect((await api('POST', '/schedules', alice.accessToken, body)).status).toBe(201);

    ({ page } = await newPage());
    await signIn(page, alice.email, alice.password);
    await page.getByRole('link', { name: 'Schedules' }).click();
    await page.waitForURL('**/console/schedules');
    const row = page.locator('tr[data-schedule="nightly-report"]');
    await row.locator('[data-state=running]').waitFor();
    expect(await row.innerText()).toMatch(/0 3 \* \* \*[\s\S]*UTC[\s\S]*\d{2}\/\d{2}\/\d{4}, 03:00:00 UTC/);
    expect(await page.locator('tr[data-schedule="heartbeat"]').innerText()).toMatch(/Europe\/Paris/);
    await shot(page, '20-schedules');

    await page.getByRole('button', { name: 'Pause nightly-report' }).click();
    await row.locator('[data-state=paused]').waitFor();
    await expect.poll(() => page.getByRole('status').innerText()).toMatch(/Paused nightly-report/);
    expect(await row.locator('.next-run').innerText()).toBe('none while paused');
    const paused = (await api('GET', '/schedules', alice.accessToken)).body.items.find(
      (s: { name: string }) => s.name === 'nightly-report',
    );
    expect(paused).toMatchObject({ paused: true });
    await shot(page, '21-schedule-paused');
    // It stays paused on a fresh read of the page.
    await page.reload();
    await row.locator('[data-state=paused]').waitFor();

    await page.getByRole('button', { name: 'Resume nightly-report' }).click();
    await row.locator('[data-state=running]').waitFor();
    await expect.poll(() => page.getByRole('status').innerText()).toMatch(/Resumed nightly-report: next run .*03:00:00 UTC/);
    const resumed = (await api('GET', '/schedules', alice.accessToken)).body.items.find(
      (s: { name: string }) => s.name === 'nightly-report',
    );
    expect(resumed).toMatchObject({ paused: false });
    expect(resumed.next_run_at).toMatch(/T03:00:00\.000Z$/);
    // The other schedule was not touched.
    expect(await page.locator('tr[data-schedule="heartbeat"] [data-state=running]').count()).toBe(1);
    await phoneShot(page, '20b-schedules-phone');
  }, 60_000);

  it('shows webhook endpoints with their breaker, enables a disabled one, and redelivers a delivery', async () => {
    const endpoint = await api('POST', '/webhooks', alice.accessToken, { url: receiver.url('/alice'), events: ['job.completed'] });
    expect(endpoint.status).toBe(201);
    endpointId = endpoint.body.id;
    const quiet = await api('POST', '/webhooks', alice.accessToken, { url: receiver.url('/quiet'), events: ['batch.completed'] });
    quietEndpointId = quiet.body.id;
    // As a long failure leaves an endpoint: disabled, its breaker open.
    await app.sql(
      `update webhook_endpoints set disabled_at = now(), disabled_reason = 'failing for 3 days', consecutive_failures = 12,
              failing_since = now() - interval '3 days', breaker_open_until = now() + interval '10 minutes' where id = $1`,
      [quietEndpointId],
    );
    const substrate = await api('POST', '/substrates', alice.accessToken, { expression_type: 'expression', expression: 'x + y' });
    const job = await api('POST', `/substrates/${substrate.body.substrate_id}/invoke`, alice.accessToken, { parameters: { x: 40, y: 2 } });
    completedJobId = job.body.id;
    const delivery = await waitFor(async () => {
      const [item] = await listDeliveries(alice.accessToken, endpointId);
      return item?.state === 'succeeded' ? item : null;
    }, 30_000);
    deliveryId = delivery.id;
    expect(receiver.at('/alice')).toHaveLength(1);

    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.waitForURL('**/console/webhooks');
    const quietRow = page.locator(`tr[data-endpoint-id="${quietEndpointId}"]`);
    await quietRow.locator('[data-state=disabled]').waitFor();
    expect(await quietRow.innerText()).toMatch(/failing for 3 days[\s\S]*open[\s\S]*12 failures in a row/);
    const aliceRow = page.locator(`tr[data-endpoint-id="${endpointId}"]`);
    expect(await aliceRow.locator('[data-state=active]').count()).toBe(1);
    expect(await aliceRow.locator('[data-state=breaker-closed]').count()).toBe(1);
    expect(await aliceRow.getByRole('button').count()).toBe(0); // nothing to enable
    await shot(page, '22-webhooks');
    await phoneShot(page, '22b-webhooks-phone');

    await page.getByRole('button', { name: `Enable ${receiver.url('/quiet')}` }).click();
    await quietRow.locator('[data-state=active]').waitFor();
    expect(
      (await api('GET', '/webhooks', alice.accessToken)).body.items.find((e: { id: string }) => e.id === quietEndpointId),
    ).toMatchObject({ state: 'active' });

    await page.getByRole('link', { name: `Deliveries to ${receiver.url('/alice')}` }).click();
    await page.waitForURL(`**/console/webhooks/${endpointId}`);
    const deliveryRow = page.locator(`tr[data-delivery-id="${deliveryId}"]`);
    await deliveryRow.locator('[data-state=succeeded]').waitFor();
    expect(await deliveryRow.locator('.attempts-cell li').count()).toBe(1);
    expect(await deliveryRow.locator('.attempts-cell').innerText()).toMatch(/#1 HTTP 200 in \d+ ms/);
    expect(await page.locator('#endpoint').innerText()).toMatch(/job\.completed[\s\S]*active[\s\S]*closed/);
    await shot(page, '23-webhook-deliveries');

    await page.getByRole('button', { name: `Redeliver job.completed ${deliveryId}` }).click();
    await expect.poll(() => page.getByRole('status').innerText()).toMatch(/Redelivering job\.completed for job/);
    // Live: the new attempt appears without a reload.
    await deliveryRow.locator('.attempts-cell li[data-attempt="2"]').waitFor({ timeout: 30_000 });
    await deliveryRow.locator('[data-state=succeeded]').waitFor();
    expect(await deliveryRow.locator('.attempts-cell').innerText()).toMatch(/#1 HTTP 200[\s\S]*#2 HTTP 200/);
    const [first, second] = receiver.at('/alice');
    expect(second?.headers['webhook-id']).toBe(first?.headers['webhook-id']);
    await shot(page, '24-webhook-redelivered');
    await phoneShot(page, '24b-webhook-deliveries-phone');
  }, 90_000);

  it("shows a job's queued, started and finished times, attempts and webhook deliveries", async () => {
    await page.getByRole('link', { name: completedJobId }).click();
    await page.waitForURL(`**/console/jobs/${completedJobId}`);
    await page.locator('#state [data-state=completed]').waitFor();
    const details = await page.locator('#job dl').innerText();
    expect(details).toMatch(/Attempts\s+1/);
    expect(details).toMatch(/Queued\s+\d{2}\/\d{2}\/\d{4}, [\d:]+ UTC/);
    expect(details).toMatch(/Started\s+\d{2}\/\d{2}\/\d{4}, [\d:]+ UTC \(waited [\d.]+ m?s\)/);
    expect(details).toMatch(/Finished\s+\d{2}\/\d{2}\/\d{4}, [\d:]+ UTC \(ran [\d.]+ m?s\)/);
    const row = page.locator(`#deliveries tr[data-delivery-id="${deliveryId}"]`);
    await row.locator('[data-state=succeeded]').waitFor();
    expect(await row.locator('.attempts-cell li').count()).toBe(2);
    expect(await row.getByRole('link', { name: `Deliveries of endpoint ${endpointId}` }).count()).toBe(1);
    expect(await page.locator('#deliveries tr[data-delivery-id]').count()).toBe(1); // the quiet endpoint took no job.completed
    expect(await page.locator('main').innerText()).not.toMatch(/\bnull\b|undefined/);
    await shot(page, '25-job-with-deliveries');
    await phoneShot(page, '25b-job-with-deliveries-phone');

    // A job still queued when its page opens: its delivery appears when it finishes, without a reload.
    await app.stopWorkers();
    const substrate = await api('POST', '/substrates', alice.accessToken, { expression_type: 'expression', expression: 'x * y' });
    const queued = await api('POST', `/substrates/${substrate.body.substrate_id}/invoke`, alice.accessToken, {
      parameters: { x: 6, y: 7 },
    });
    await page.goto(`/console/jobs/${queued.body.id}`);
    await page.locator('#state [data-state=queued]').waitFor();
    await page.getByText('No webhook deliveries for this job.').waitFor();
    await page.evaluate('window.notReloaded = true');
    await app.startWorkers({ finishedJobTrimIntervalMs: 0 });
    await page.locator('#state [data-state=completed]').waitFor({ timeout: 30_000 });
    await page.locator('#deliveries tr[data-delivery-id] [data-state=succeeded]').waitFor({ timeout: 30_000 });
    expect(await page.evaluate<boolean | undefined>('window.notReloaded')).toBe(true);

    // The same over HTTP, and a bad id is the caller's mistake, named.
    const deliveries = await api('GET', `/jobs/${completedJobId}/webhook-deliveries`, alice.accessToken);
    expect(deliveries.status).toBe(200);
    expect(deliveries.body.items).toEqual([expect.objectContaining({ id: deliveryId, endpoint_id: endpointId, job_id: completedJobId })]);
    const bad = await api('GET', '/jobs/not-a-job/webhook-deliveries', alice.accessToken);
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([expect.objectContaining({ field: 'params.id' })]);
  }, 60_000);

  it('groups failed jobs by error for an admin, and retries a group from its card', async () => {
    const alices = await failingInvokes(alice, 'x - y', 2);
    const bobs = await failingInvokes(bob, 'x / y', 1);

    // Over HTTP: Alice's failures in one group of two, Bob's apart.
    const groups = await api('GET', `/admin/jobs/failure-groups?customer_id=${aliceCustomerId}`, adminToken);
    expect(groups.status).toBe(200);
    expect(groups.body).toMatchObject({ complete: true, scanned: 2 });
    expect(groups.body.items).toEqual([
      expect.objectContaining({
        error: expect.stringContaining(`substrate ${alices.substrateId} not found`),
        jobs: 2,
        not_retried: 2,
        customers: 1,
        customer_ids: [aliceCustomerId],
        types: ['invoke'],
      }),
    ]);
    const everyone = (await api('GET', '/admin/jobs/failure-groups', adminToken)).body.items as Array<{
      error: string;
      customer_ids: string[];
    }>;
    expect(everyone.find((group) => group.error.includes(bobs.substrateId))?.customer_ids).toEqual([
      (await api('GET', '/auth/me', bob.accessToken)).body.customer_id,
    ]);
    for (const [query, field] of [
      ['limit=0', 'query.limit'],
      ['customer_id=someone', 'query.customer_id'],
      ['created_after=yesterday', 'query.created_after'],
      ['state=failed', 'query'],
    ] as const) {
      const refused = await api('GET', `/admin/jobs/failure-groups?${query}`, adminToken);
      expect(refused.status, query).toBe(400);
      expect(refused.body.errors?.[0]?.field, query).toMatch(new RegExp(`^${field.replace('.', '\\.')}`));
    }

    const { page: adminPage } = await newPage();
    await signIn(adminPage, 'admin@example.test', 'admin-password-123');
    await adminPage.getByRole('link', { name: 'Failures' }).click();
    await adminPage.waitForURL('**/console/admin/failures');
    await adminPage.locator('#groups[data-loaded]').waitFor({ state: 'attached' });
    expect(await adminPage.locator('.group').count()).toBeGreaterThanOrEqual(2);
    await shot(adminPage, '26-admin-failure-groups');

    await adminPage.getByLabel('Customer id').fill(aliceCustomerId);
    await adminPage.getByRole('button', { name: 'Show groups' }).click();
    await expect.poll(() => adminPage.locator('.group').count()).toBe(1);
    const card = adminPage.locator('.group');
    await expect
      .poll(() => card.innerText())
      .toMatch(new RegExp(`substrate ${alices.substrateId} not found[\\s\\S]*2 failed job\\(s\\), 2 not retried yet`));
    expect(await card.locator(`[data-customer-id="${aliceCustomerId}"]`).count()).toBe(1);
    expect(await adminPage.locator('main').innerText()).not.toContain(bobs.substrateId);
    expect(new URL(adminPage.url()).searchParams.get('customer_id')).toBe(aliceCustomerId);

    const error = await card.locator('h2').innerText();
    await card.getByRole('button', { name: `Retry these: ${error}` }).click();
    await expect.poll(() => card.getByRole('status').innerText()).toMatch(/Dry run: 2 failed job\(s\) match and would be retried/);
    // A dry run changes nothing.
    expect(
      (await api('GET', '/jobs?limit=100', alice.accessToken)).body.items.filter((job: { retry_of?: string }) => job.retry_of),
    ).toEqual([]);
    await shot(adminPage, '27-admin-failure-group-dry-run');

    // With the substrate back (the same id: ids hash owner, type and expression), the retries succeed.
    await api('POST', '/substrates', alice.accessToken, { expression_type: 'expression', expression: 'x - y' });
    await card.getByRole('button', { name: `Confirm retry: ${error}` }).click();
    await expect.poll(() => card.getByRole('status').innerText()).toMatch(/Retried 2 of 2 failed job\(s\)/);
    await shot(adminPage, '28-admin-failure-group-retried');
    await phoneShot(adminPage, '28b-admin-failure-group-phone');
    const retries = await waitFor(async () => {
      const jobs = (await api('GET', '/jobs?limit=100', alice.accessToken)).body.items as Array<{
        retry_of?: string;
        state: string;
        result?: { result: number };
      }>;
      const found = jobs.filter((job) => alices.jobIds.includes(job.retry_of ?? ''));
      return found.length === 2 && found.every((job) => job.state === 'completed') ? found : null;
    }, 30_000);
    expect(retries.map((job) => job.result?.result).sort()).toEqual([8, 9]); // 10 - 2 and 11 - 2
    // Bob's failure is untouched, and the group now has nothing left to retry.
    expect((await api('GET', `/jobs/${bobs.jobIds[0]}`, bob.accessToken)).body.state).toBe('failed');
    expect((await api('GET', '/jobs?limit=100', bob.accessToken)).body.items.filter((job: { retry_of?: string }) => job.retry_of)).toEqual(
      [],
    );
    await adminPage.getByRole('button', { name: 'Show groups' }).click();
    await expect.poll(() => card.innerText()).toMatch(/2 failed job\(s\), 0 not retried yet[\s\S]*Every job here has been retried already/);
    expect(await card.getByRole('button', { name: `Retry these: ${error}` }).isDisabled()).toBe(true);
    await adminPage.context().close();
  }, 180_000);

  it("lists customers with their services' state, limits and pause, and pauses then resumes one", async () => {
    // Carol: a monthly limit she has reached, a suspended service.
    await app.sql(`update customers set max_monthly_usd_cents = 500 where id = $1`, [carolCustomerId]);
    await app.sql(
      `insert into escrow_accounts (id, customer_id, kind, balance_usd_cents, current_month_charged_usd_cents, current_month_start)
       values ($1::text, $1::uuid, 'customer', 0, 500, date_trunc('month', now()))
       on conflict (id) do update set current_month_charged_usd_cents = 500`,
      [carolCustomerId],
    );
    await app.sql(`update service_instances set suspended_reason = 'balance exhausted' where customer_id = $1`, [carolCustomerId]);

    const { page: adminPage } = await newPage(390, 844); // a phone's width
    adminPage.on('dialog', (dialog) => void dialog.accept());
    await signIn(adminPage, 'admin@example.test', 'admin-password-123');
    await adminPage.goto('/console/admin/customers');
    const carolRow = adminPage.locator(`tr[data-customer-id="${carolCustomerId}"]`);
    await carolRow.waitFor();
    expect(await carolRow.innerText()).toMatch(new RegExp(`${carol.email}[\\s\\S]*running`));
    expect(await carolRow.locator('[data-service=compute]').getAttribute('data-service-state')).toBe('suspended');
    expect(await carolRow.innerText()).toMatch(/balance exhausted[\s\S]*limit \$5\.00 a month\s*reached/);
    const aliceRow = adminPage.locator(`tr[data-customer-id="${aliceCustomerId}"]`);
    expect(await aliceRow.locator('[data-service=compute]').getAttribute('data-service-state')).toBe('running');
    expect(await aliceRow.innerText()).toMatch(/no monthly limit/);
    await phoneShot(adminPage, '29-admin-customers-phone');

    await adminPage.getByRole('button', { name: `Pause work of ${carol.email}` }).click();
    await carolRow.locator('.work-cell [data-state=paused]').waitFor();
    const listed = (await api('GET', '/admin/customers?limit=100', adminToken)).body.items.find(
      (c: { id: string }) => c.id === carolCustomerId,
    );
    expect(listed.paused_at).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    await adminPage.reload();
    await carolRow.locator('.work-cell [data-state=paused]').waitFor();
    await shot(adminPage, '30-admin-customer-paused-phone');
    await adminPage.getByRole('button', { name: `Resume work of ${carol.email}` }).click();
    await carolRow.locator('.work-cell [data-state=running]').waitFor();
    expect(
      (await api('GET', '/admin/customers?limit=100', adminToken)).body.items.find((c: { id: string }) => c.id === carolCustomerId)
        .paused_at,
    ).toBeNull();

    // At the desktop width too.
    await adminPage.setViewportSize({ width: 1400, height: 900 });
    await shot(adminPage, '31-admin-customers');
    await adminPage.context().close();
  }, 60_000);

  it('shows another customer none of it, in the browser and over HTTP', async () => {
    const { page: bobPage } = await newPage(390, 844);
    await signIn(bobPage, bob.email, bob.password);
    await bobPage.getByRole('link', { name: 'Schedules' }).click();
    await bobPage.getByText('No schedules yet.').waitFor();
    await shot(bobPage, '32-other-customer-schedules-phone');
    await bobPage.getByRole('link', { name: 'Webhooks' }).click();
    await bobPage.getByText(/No webhook endpoints yet/).waitFor();
    await bobPage.goto(`/console/webhooks/${endpointId}`);
    await expect.poll(() => bobPage.getByRole('alert').innerText()).toBe('No such webhook endpoint.');
    expect(await bobPage.locator('tr[data-delivery-id]').count()).toBe(0);
    await bobPage.goto(`/console/jobs/${completedJobId}`);
    await expect.poll(() => bobPage.getByRole('alert').innerText()).toBe('No such job.');
    expect(await bobPage.locator('#deliveries-section').isHidden()).toBe(true);
    for (const path of ['/console/admin/failures', '/console/admin/customers']) {
      await bobPage.goto(path);
      await expect.poll(() => bobPage.getByRole('alert').innerText()).toBe('This page is for administrators.');
      expect(await bobPage.locator('.group, tr[data-customer-id]').count()).toBe(0);
    }
    expect(await bobPage.getByRole('link', { name: 'Failures' }).count()).toBe(0);
    expect(await bobPage.getByRole('link', { name: 'Customers' }).count()).toBe(0);
    await shot(bobPage, '33-other-customer-admin-refused-phone');
    await bobPage.context().close();

    const asBob = bob.accessToken;
    expect((await api('GET', `/jobs/${completedJobId}/webhook-deliveries`, asBob)).status).toBe(404);
    expect((await api('GET', `/webhooks/${endpointId}/deliveries`, asBob)).status).toBe(404);
    expect((await api('POST', `/webhooks/${endpointId}/deliveries/${deliveryId}/redeliver`, asBob)).status).toBe(404);
    expect((await api('POST', `/webhooks/${quietEndpointId}/enable`, asBob)).status).toBe(404);
    expect((await api('POST', '/schedules/nightly-report/pause', asBob)).status).toBe(404);
    expect((await api('GET', '/schedules', asBob)).body.items).toEqual([]);
    expect((await api('GET', '/webhooks', asBob)).body.items).toEqual([]);
    expect((await api('GET', `/admin/jobs/failure-groups?customer_id=${aliceCustomerId}`, asBob)).status).toBe(403);
    expect((await api('GET', '/admin/customers', asBob)).status).toBe(403);
    // Alice's schedule is as she left it.
    expect((await api('GET', '/schedules', alice.accessToken)).body.items.map((s: { paused: boolean }) => s.paused)).toEqual([
      false,
      false,
    ]);
  }, 60_000);

  it('had no script error, CSP violation or request leaving this machine on any page', () => {
    expect(problems).toEqual([]);
  });
});
