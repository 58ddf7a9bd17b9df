import { mkdirSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { launchChromium } from './chromium.js';
import { consolePages, consoleScreenshots } from './console-helpers.js';

const batchSize = 5000;

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let browser: Browser;
let alice: TestUser;
let aliceCustomerId: string;
let bob: TestUser;
/** Alice's job that fails (its substrate is gone when it runs) and the retry she starts from its page. */
let failedJobId: string;
let retryJobId: string;
let batchId: string;

const { problems, newPage, signIn, shot } = consolePages(
  () => browser,
  () => app.baseUrl,
);

/** Submits `count` invokes of `expression` whose substrate is deleted before any worker runs them, so they fail with "substrate … not found". */
async function invokesOfADeletedSubstrate(
  user: TestUser,
  expression: string,
  count = 1,
): Promise<{ jobIds: string[]; substrateId: string }> {
  const created = await request('POST', '/api/v1/substrates', {
    token: user.accessToken,
    body: { expression_type: 'expression', expression },
  });
  expect(created.status).toBe(201);
  const substrateId = created.body.substrate_id;
  const jobIds: string[] = [];
  for (let i = 0; i < count; i++) {
    const submitted = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token: user.accessToken,
      body: { parameters: { x: 6 + i, y: 7 + i } },
    });
    expect(submitted.status).toBe(202);
    jobIds.push(submitted.body.id);
  }
  expect((await request('DELETE', `/api/v1/substrates/${substrateId}`, { token: user.accessToken })).status).toBe(204);
  return { jobIds, substrateId };
}

/** Re-creating the same expression gives the same substrate id (ids hash owner, type and expression): a retry then succeeds. */
async function recreateSubstrate(user: TestUser, expression: string, substrateId: string): Promise<void> {
  const created = await request('POST', '/api/v1/substrates', {
    token: user.accessToken,
    body: { expression_type: 'expression', expression },
  });
  expect(created.body.substrate_id).toBe(substrateId);
}

const jobState = async (user: TestUser, id: string) => (await request('GET', `/api/v1/jobs/${id}`, { token: user.accessToken })).body;

beforeAll(async () => {
  mkdirSync(consoleScreenshots, { recursive: true });
  app = await startTestApp();
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  bob = await registerUser(request);
  aliceCustomerId = (await request('GET', '/api/v1/auth/me', { token: alice.accessToken })).body.customer_id;
  browser = await launchChromium();
}, 15 * 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
});

describe('the console in a real browser', () => {
  let page: Page;

  it('serves its pages with a CSP that allows only its own scripts, styles and API calls', async () => {
    const answer = await fetch(`${app.baseUrl}/console/jobs`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/text\/html/);
    const csp = answer.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const scripts = [...(await answer.text()).matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attributes, body] of scripts) {
      expect(attributes).toMatch(/ src="\/console\/assets\/[a-z-]+\.js"/);
      expect(body).toBe('');
    }
  });

  it('signs a customer in with an httpOnly session cookie the page cannot read, and keeps no token', async () => {
    let context: BrowserContext;
    ({ context, page } = await newPage());
    await page.goto('/console');
    await shot(page, '01-sign-in');
    await page.getByLabel('Email').fill(alice.email);
    await page.getByLabel('Password').fill('wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').innerText()).toMatch(/Wrong email or password/);
    await signIn(page, alice.email, alice.password);
    // The browser holds the session: httpOnly, SameSite=Strict, sent only to the API.
    const cookies = await context.cookies(app.baseUrl + '/api/v1/auth/me');
    expect(cookies).toEqual([
      expect.objectContaining({ name: 'chrysalis_session', httpOnly: true, sameSite: 'Strict', path: '/api/v1', secure: false }),
    ]);
    expect(cookies[0]!.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The page's script sees none of it, and no token is kept anywhere a script could read.
    expect(await page.evaluate<string>('document.cookie')).toBe('');
    await page.goto('/api/v1/health'); // document.cookie of a page under the cookie's path
    expect(await page.evaluate<string>('document.cookie')).toBe('');
    await page.goto('/console/jobs');
    expect(await page.evaluate<number>('sessionStorage.length + localStorage.length')).toBe(0);
  });

  it('shows a job failing live, without a reload', async () => {
    await page.locator('#jobs[data-loaded]').waitFor({ state: 'attached' });
    // A marker that a reload would lose.
    await page.evaluate('window.notReloaded = true');
    // The live state comes through an EventSource the session cookie authenticates (no bearer header).
    const streams: Array<{ type: string; status: number; authorization?: string; cookie?: string }> = [];
    page.on('response', async (response) => {
      if (!/\/api\/v1\/jobs\/[^/]+\/events$/.test(response.url())) return;
      const headers = await response.request().allHeaders();
      streams.push({
        type: response.request().resourceType(),
        status: response.status(),
        authorization: headers.authorization,
        cookie: headers.cookie,
      });
    });
    const {
      jobIds: [jobId],
      substrateId,
    } = await invokesOfADeletedSubstrate(alice, 'x * y');
    failedJobId = jobId!;
    const row = page.locator(`tr[data-job-id="${jobId}"]`);
    await row.locator('[data-state=queued]').waitFor();
    // Workers start only now, so the job certainly runs after its substrate was deleted.
    await app.startWorkers({ finishedJobTrimIntervalMs: 0 });
    await row.locator('[data-state=failed]').waitFor();
    await expect.poll(() => row.locator('.error-text').innerText()).toMatch(/substrate 0x[0-9a-f]{16} not found/);
    expect(await page.evaluate<boolean | undefined>('window.notReloaded')).toBe(true);
    expect(streams[0]).toMatchObject({
      type: 'eventsource',
      status: 200,
      authorization: undefined,
      cookie: expect.stringMatching(/^chrysalis_session=/),
    });
    await shot(page, '02-jobs-failed-live');

    // The list re-reads its first page every 2 s: hold one such read (no filter) until the filter has changed.
    const unfiltered = /\/api\/v1\/jobs\?limit=20$/;
    const held: Array<() => void> = [];
    await page.route(unfiltered, async (route) => {
      await new Promise<void>((resolve) => held.push(resolve));
      await route.continue();
    });
    await expect.poll(() => held.length, { timeout: 10_000 }).toBeGreaterThan(0);
    await page.getByRole('combobox', { name: 'State' }).selectOption('completed');
    await page.locator('#jobs[data-loaded]').waitFor({ state: 'attached' });
    // Its answer, arriving under the new filter, is dropped: the failed job is not listed among completed ones.
    const stale = page.waitForEvent('requestfinished', (request) => unfiltered.test(request.url()));
    for (const open of held) open();
    await stale;
    await page.unroute(unfiltered);
    await page.waitForTimeout(300);
    expect(await row.count()).toBe(0);
    expect(new URL(page.url()).search).toBe('?state=completed');
    await page.getByRole('combobox', { name: 'State' }).selectOption('failed');
    await row.waitFor();

    await recreateSubstrate(alice, 'x * y', substrateId);
  }, 60_000);

  it('retries the failed job from its page and follows the retry to completion', async () => {
    await page.getByRole('link', { name: failedJobId }).click();
    await page.waitForURL(`**/console/jobs/${failedJobId}`);
    await page.locator('#state [data-state=failed]').waitFor();
    await expect.poll(() => page.locator('#error').innerText()).toMatch(/not found/);
    expect(JSON.parse(await page.locator('#payload').innerText())).toMatchObject({
      substrate_id: expect.stringMatching(/^0x[0-9a-f]{16}$/),
    });
    await shot(page, '03-job-failed');

    await page.getByRole('button', { name: 'Retry this job' }).click();
    await page.waitForURL((url) => /^\/console\/jobs\/[0-9a-f-]{36}$/.test(url.pathname) && !url.pathname.endsWith(failedJobId));
    retryJobId = page.url().split('/').at(-1)!;
    await page.getByRole('link', { name: failedJobId }).waitFor(); // "Retry of"
    await page.locator('#state [data-state=completed]').waitFor();
    expect(JSON.parse(await page.locator('#result').innerText())).toMatchObject({ result: 42 });
    expect(await page.getByRole('button', { name: 'Retry this job' }).count()).toBe(0);
    expect(await page.locator('#job').innerText()).not.toMatch(/\bnull\b|undefined/);
    await shot(page, '04-job-retried-completed');

    expect(await jobState(alice, retryJobId)).toMatchObject({ state: 'completed', retry_of: failedJobId });
    expect(await jobState(alice, failedJobId)).toMatchObject({ state: 'failed' });
  }, 60_000);

  it(`shows a ${batchSize.toLocaleString('en-US')}-item batch's progress bar reach 100 %`, async () => {
    const substrate = await request('POST', '/api/v1/substrates', {
      token: alice.accessToken,
      body: { expression_type: 'expression', expression: 'x + y' },
    });
    const invocations = Array.from({ length: batchSize }, (_, i) => ({
      substrate_id: substrate.body.substrate_id,
      parameters: { x: i, y: 1 },
    }));
    const submitted = await request('POST', '/api/v1/batches', { token: alice.accessToken, body: { invocations } });
    expect(submitted.status).toBe(202);
    batchId = submitted.body.id;

    await page.getByRole('link', { name: 'Batches' }).click();
    await page.getByRole('link', { name: batchId }).click();
    await page.waitForURL(`**/console/batches/${batchId}`);
    const bar = page.getByRole('progressbar', { name: 'Items finished' });
    await bar.waitFor();
    await expect.poll(() => bar.getAttribute('max')).toBe(String(batchSize));
    await page.locator('#percent', { hasText: '100 %' }).waitFor({ timeout: 120_000 });
    expect(await bar.getAttribute('value')).toBe(String(batchSize));
    await expect.poll(() => page.locator('#summary').innerText()).toMatch(/5,000 of 5,000 items finished: 5,000 completed, 0 failed/);
    await page.locator('[data-state=completed]').first().waitFor();
    await shot(page, '05-batch-complete');
  }, 180_000);

  it('creates an API key and shows it once', async () => {
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.waitForURL('**/console/api-keys');
    await page.getByLabel('Name').fill('deploy bot');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = await page.locator('#created-key').innerText();
    expect(key).toMatch(/^sk_live_/);
    await page.getByRole('cell', { name: 'deploy bot', exact: true }).waitFor();
    await shot(page, '06-api-key-created');
    // The key works, and the page never shows it again.
    expect((await request('GET', '/api/v1/auth/me', { token: key })).body.customer_id).toBe(aliceCustomerId);
    await page.reload();
    await page.getByRole('cell', { name: 'deploy bot', exact: true }).waitFor();
    expect(await page.content()).not.toContain(key);
    expect(await page.locator('#new-key').isHidden()).toBe(true);
  });

  it('revokes a key from its page: the key then answers 401', async () => {
    await page.getByLabel('Name').fill('old laptop');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = await page.locator('#created-key').innerText();
    expect((await request('GET', '/api/v1/auth/me', { token: key })).status).toBe(200);
    const row = page.locator('tr', { has: page.getByRole('cell', { name: 'old laptop', exact: true }) });
    await row.getByText('active').waitFor();
    page.once('dialog', (dialog) => void dialog.accept()); // "Revoke the key …?"
    await page.getByRole('button', { name: 'Revoke old laptop' }).click();
    await row.getByText(/^revoked /).waitFor();
    expect(await page.getByRole('button', { name: 'Revoke old laptop' }).count()).toBe(0);
    await shot(page, '06b-api-key-revoked');
    const refused = await request('GET', '/api/v1/auth/me', { token: key });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    // The other key is untouched.
    expect(await page.getByRole('button', { name: 'Revoke deploy bot' }).count()).toBe(1);
  });

  it('draws the usage chart per day and service', async () => {
    const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10) + 'T00:00:00Z';
    const usage: Array<[number, string, number]> = [
      [3, 'compute', 1200],
      [2, 'compute', 800],
      [2, 'seal', 300],
      [1, 'compute', 1500],
      [1, 'seal', 650],
      [0, 'seal', 90],
    ];
    for (const [daysAgo, service, requests] of usage)
      await app.sql(
        `insert into usage_records (customer_id, service_type, window_start, window_end, request_count, bytes_transferred)
         values ($1, $2, $3, $3::timestamptz + interval '1 hour', $4, 0)`,
        [aliceCustomerId, service, day(daysAgo), requests],
      );
    await page.getByRole('link', { name: 'Usage' }).click();
    await page.waitForURL('**/console/usage');
    const chart = page.getByRole('img', { name: /Requests per day and service/ });
    await chart.waitFor();
    expect(await chart.locator('rect').count()).toBe(usage.length);
    const today = new Date().toISOString().slice(0, 10);
    expect(await chart.locator(`rect[data-day="${today}"][data-service=seal] title`).textContent()).toMatch(/90 requests/);
    expect(await page.locator('.legend').innerText()).toMatch(/compute[\s\S]*seal/);
    await shot(page, '07-usage-chart');
  });

  it("lets an admin find the customer's failed jobs by customer and error text, dry-run, then retry them", async () => {
    // Two more of Alice's jobs fail the same way; with the workers stopped, they run after the deletion.
    await app.stopWorkers();
    const first = await invokesOfADeletedSubstrate(alice, 'x - y', 2);
    // Bob's own failure with the same text must not be touched.
    const bobs = await invokesOfADeletedSubstrate(bob, 'x / y');
    const bobsJobId = bobs.jobIds[0]!;
    await app.startWorkers({ finishedJobTrimIntervalMs: 0 });
    for (const id of first.jobIds) await waitFor(async () => (await jobState(alice, id)).state === 'failed', 30_000);
    await waitFor(async () => (await jobState(bob, bobsJobId)).state === 'failed', 30_000);

    const { page: adminPage } = await newPage();
    await signIn(adminPage, 'admin@example.test', 'admin-password-123');
    await adminPage.getByRole('link', { name: 'Admin' }).click();
    await adminPage.waitForURL('**/console/admin');
    await adminPage.getByLabel('Customer id').fill(aliceCustomerId);
    await adminPage.getByLabel('Error contains').fill('not found');
    await adminPage.getByRole('button', { name: 'Search' }).click();
    const rows = adminPage.locator('#jobs tr[data-job-id]');
    // Alice's three failed jobs (the first one already retried by her), none of Bob's.
    await expect.poll(() => rows.count()).toBe(3);
    const listed = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-job-id')));
    expect(listed.sort()).toEqual([failedJobId, ...first.jobIds].sort());
    await shot(adminPage, '08-admin-search');

    expect(await adminPage.getByRole('button', { name: 'Retry these' }).isDisabled()).toBe(true);
    await adminPage.getByRole('button', { name: 'Dry run retry' }).click();
    // The job Alice already retried is not retried again.
    await expect.poll(() => adminPage.getByRole('status').innerText()).toMatch(/Dry run: 2 failed job\(s\) match; nothing was retried/);
    await shot(adminPage, '09-admin-dry-run');
    const afterDryRun = await request('GET', `/api/v1/jobs?limit=100`, { token: alice.accessToken });
    expect(afterDryRun.body.items.filter((job: { retry_of?: string }) => job.retry_of)).toHaveLength(1);

    await recreateSubstrate(alice, 'x - y', first.substrateId);
    await adminPage.getByRole('button', { name: 'Retry these' }).click();
    await expect.poll(() => adminPage.getByRole('status').innerText()).toMatch(/Retried 2 of 2 failed job\(s\)/);
    await shot(adminPage, '10-admin-retried');

    const retries = await waitFor(async () => {
      const jobs = (await request('GET', `/api/v1/jobs?limit=100`, { token: alice.accessToken })).body.items as Array<{
        retry_of?: string;
        state: string;
        result?: { result: number };
      }>;
      const found = jobs.filter((job) => first.jobIds.includes(job.retry_of ?? ''));
      return found.length === 2 && found.every((job) => job.state === 'completed') ? found : null;
    }, 30_000);
    expect(retries.map((job) => job.result?.result)).toEqual([-1, -1]); // 6 - 7 and 7 - 8
    expect((await jobState(bob, bobsJobId)).state).toBe('failed');
    const bobJobs = (await request('GET', '/api/v1/jobs', { token: bob.accessToken })).body.items;
    expect(bobJobs.filter((job: { retry_of?: string }) => job.retry_of)).toEqual([]);
  }, 120_000);

  it("shows an admin every customer's jobs, a job's details and a batch's progress, as the customer sees them", async () => {
    const { page: adminPage } = await newPage();
    await signIn(adminPage, 'admin@example.test', 'admin-password-123');
    await adminPage.locator('#jobs[data-loaded]').waitFor({ state: 'attached' });
    expect(await adminPage.getByRole('columnheader', { name: 'Customer' }).isVisible()).toBe(true);
    const aliceRow = adminPage.locator(`#jobs tr[data-job-id="${failedJobId}"]`);
    await aliceRow.waitFor();
    expect(await aliceRow.innerText()).toContain(aliceCustomerId);
    await shot(adminPage, '11a-admin-all-jobs');

    await aliceRow.getByRole('link').click();
    await adminPage.waitForURL(`**/console/jobs/${failedJobId}`);
    await expect.poll(() => adminPage.locator('#customer').textContent()).toBe(aliceCustomerId);
    expect(await adminPage.locator('#payload').innerText()).toContain('parameters');
    expect(await adminPage.locator('#error').innerText()).toMatch(/not found/);
    expect(await adminPage.locator('#state').innerText()).toBe('failed');
    await adminPage.locator('#deliveries[data-loaded]').waitFor({ state: 'attached' });
    await shot(adminPage, '11b-admin-customer-job');

    await adminPage.goto(`/console/jobs/${retryJobId}`);
    await expect.poll(() => adminPage.locator('#state').innerText()).toBe('completed');
    expect(await adminPage.locator('#result').innerText()).toContain('"result"');

    await adminPage.goto(`/console/batches/${batchId}`);
    await expect.poll(() => adminPage.locator('#percent').innerText()).toBe('100 %');
    expect(await adminPage.locator('#batch dl').innerText()).toContain(aliceCustomerId);

    // The admin page lists any state now, each job linked to its page.
    await adminPage.goto(`/console/admin?customer_id=${aliceCustomerId}&state=completed`);
    const completedRow = adminPage.locator(`#jobs tr[data-job-id="${retryJobId}"]`);
    await completedRow.waitFor();
    expect(await adminPage.getByRole('button', { name: 'Dry run retry' }).isDisabled()).toBe(true);
    await completedRow.getByRole('link').click();
    await adminPage.waitForURL(`**/console/jobs/${retryJobId}`);
  }, 60_000);

  it('shows another customer none of it, in the browser and over HTTP', async () => {
    const { page: bobPage } = await newPage(390, 844); // a phone's width
    await signIn(bobPage, bob.email, bob.password);
    await bobPage.locator('#jobs[data-loaded]').waitFor({ state: 'attached' });
    const bobRows = await bobPage.locator('#jobs tr[data-job-id]').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-job-id')));
    expect(bobRows).toHaveLength(1); // his own failed job only
    for (const id of [failedJobId, retryJobId, batchId]) expect(bobRows).not.toContain(id);
    await shot(bobPage, '11-other-customer-jobs-phone');

    await bobPage.goto(`/console/jobs/${failedJobId}`);
    await expect.poll(() => bobPage.getByRole('alert').innerText()).toBe('No such job.');
    expect(await bobPage.getByRole('button', { name: 'Retry this job' }).count()).toBe(0);
    await shot(bobPage, '12-other-customer-job-404');
    await bobPage.goto(`/console/batches/${batchId}`);
    await expect.poll(() => bobPage.getByRole('alert').innerText()).toBe('No such batch.');
    await bobPage.goto('/console/batches');
    await bobPage.getByText('No batches yet.').waitFor();
    await bobPage.goto('/console/usage');
    await bobPage.locator('#no-usage').waitFor();
    expect(await bobPage.locator('#usage-chart rect').count()).toBe(0);
    await bobPage.goto('/console/admin');
    await expect.poll(() => bobPage.getByRole('alert').innerText()).toBe('This page is for administrators.');
    expect(await bobPage.getByRole('link', { name: 'Admin' }).count()).toBe(0);

    const asBob = { token: bob.accessToken };
    expect((await request('GET', `/api/v1/jobs/${failedJobId}`, asBob)).status).toBe(404);
    expect((await request('POST', `/api/v1/jobs/${failedJobId}/retry`, asBob)).status).toBe(404);
    expect((await request('GET', `/api/v1/jobs/${retryJobId}/events`, asBob)).status).toBe(404);
    expect((await request('GET', `/api/v1/batches/${batchId}`, asBob)).status).toBe(404);
    expect((await request('GET', '/api/v1/jobs?state=completed', asBob)).body.items).toEqual([]);
    expect((await request('GET', '/api/v1/billing/usage', asBob)).body.items).toEqual([]);
    expect((await request('GET', '/api/v1/api-keys', asBob)).body.items).toEqual([]);
    expect((await request('GET', `/api/v1/admin/jobs?customer_id=${aliceCustomerId}`, asBob)).status).toBe(403);
  }, 60_000);

  it('signs out: the session ends on the server, so the same cookie then answers 401', async () => {
    const { context, page: outPage } = await newPage();
    await signIn(outPage, alice.email, alice.password);
    await outPage.locator('#jobs[data-loaded]').waitFor({ state: 'attached' });
    const [cookie] = await context.cookies(app.baseUrl + '/api/v1/auth/me');
    const withCookie = { headers: { cookie: `chrysalis_session=${cookie!.value}` } };
    expect((await request('GET', '/api/v1/auth/me', withCookie)).status).toBe(200);
    await outPage.getByRole('button', { name: 'Sign out' }).click();
    await outPage.waitForURL((url) => url.pathname === '/console');
    expect(await context.cookies(app.baseUrl + '/api/v1/auth/me')).toEqual([]);
    // A copy of the cookie kept from before opens nothing.
    expect((await request('GET', '/api/v1/auth/me', withCookie)).status).toBe(401);
    // Nor does the browser get back in: a console page sends it to sign in.
    await outPage.goto('/console/jobs');
    await outPage.waitForURL((url) => url.pathname === '/console' && url.searchParams.get('next') === '/console/jobs');
  });

  it('had no script error, CSP violation or request leaving this machine on any page', () => {
    expect(problems).toEqual([]);
  });
});
