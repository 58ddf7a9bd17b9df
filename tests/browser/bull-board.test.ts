import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { everyQueue } from '../helpers/queues.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { launchChromium } from './chromium.js';

const screenshots = path.resolve('tests/browser/__screenshots__');

let app: TestApp;
let request: ReturnType<typeof httpClient>;
let alice: TestUser;
let browser: Browser;
let page: Page;
let failedJobId: string;
/** The failed job's shard, as Bull Board's links spell it (`%7Binvoke.3%7D`). */
const failedQueue = () => encodeURIComponent(app.deps.queues.forJob('invoke', failedJobId).name);
/** Requests for anything but this app (aborted, never sent), and console errors, since the last `watchPage()`. */
let offsite: string[] = [];
let consoleErrors: string[] = [];
const watchPage = () => {
  offsite = [];
  consoleErrors = [];
};
let substrateId: string;

const shot = (name: string) => page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });

/**
 * A job that fails for a reason that can be put right: its substrate is deleted between submit and run
 * (the processor fails it permanently: "substrate … not found"). Re-creating the same expression gives
 * the same substrate id (ids hash owner, type and expression), so a retry then succeeds.
 */
async function jobFailingForAMissingSubstrate(): Promise<void> {
  const created = await request('POST', '/api/v1/substrates', {
    token: alice.accessToken,
    body: { expression_type: 'expression', expression: 'x * y' },
  });
  substrateId = created.body.substrate_id;
  const submitted = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
    token: alice.accessToken,
    body: { parameters: { x: 6, y: 7 } },
  });
  expect(submitted.status).toBe(202);
  failedJobId = submitted.body.id;
  expect((await request('DELETE', `/api/v1/substrates/${substrateId}`, { token: alice.accessToken })).status).toBe(204);
  // Workers start only now, so the job certainly runs after the deletion. BullMQ keeps a completed job only
  // until its row is durable (the sweeper's trim, design §4); the last test looks at one, so no trim here.
  await app.startWorkers({ finishedJobTrimIntervalMs: 0 });
  const failed = await waitFor(async () => {
    const job = await request('GET', `/api/v1/jobs/${failedJobId}`, { token: alice.accessToken });
    return job.body.state === 'failed' ? job.body : null;
  });
  expect(failed.error).toMatch(/not found/);
}

beforeAll(async () => {
  mkdirSync(screenshots, { recursive: true });
  app = await startTestApp();
  request = httpClient(app.baseUrl);
  alice = await registerUser(request);
  await jobFailingForAMissingSubstrate();
  browser = await launchChromium();
  const context = await browser.newContext({ baseURL: app.baseUrl, viewport: { width: 1280, height: 800 } });
  // Nothing the board asks for may leave this machine: such requests are recorded and aborted.
  await context.route(
    (url) => !['127.0.0.1', 'localhost'].includes(url.hostname),
    (route) => {
      offsite.push(route.request().url());
      return route.abort();
    },
  );
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  // Fail a step with its locator named, well inside the test's own timeout.
  page.setDefaultTimeout(15_000);
}, 15 * 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
});

/** Fills and submits the login form; resolves with the status of the form post once its answer has loaded. */
async function logIn(email: string, password: string): Promise<number> {
  await page.goto('/admin/login');
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  const [posted] = await Promise.all([
    page.waitForResponse((response) => response.request().method() === 'POST' && new URL(response.url()).pathname === '/admin/login'),
    page.click('button[type=submit]'),
  ]);
  await page.waitForLoadState('load');
  return posted.status();
}

describe('Bull Board in a real browser', () => {
  it('sends an anonymous visitor of /admin/queues to the login page', async () => {
    await page.goto('/admin/queues');
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await expect.poll(() => page.locator('input[name=email]').isVisible()).toBe(true);
    await shot('01-login');
  });

  it('keeps a user who is not an admin out, with an error on the form', async () => {
    expect(await logIn(alice.email, alice.password)).toBe(401);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    expect(await page.locator('[role=alert]').innerText()).toMatch(/not an administrator/);
    await shot('02-login-refused');
    await page.goto('/admin/queues');
    expect(new URL(page.url()).pathname).toBe('/admin/login');
  });

  it('shows every queue to the admin after login', async () => {
    expect(await logIn('admin@example.test', 'admin-password-123')).toBe(303);
    await page.waitForURL('**/admin/queues');
    const sidebar = page.locator('aside');
    for (const queue of everyQueue(app.deps).map(({ name }) => name))
      await sidebar.getByRole('link', { name: queue, exact: true }).waitFor();
    await page.getByText('FAILED', { exact: true }).first().waitFor();
    await shot('03-queues');
  });

  it('loads the board, a queue and a job without a request leaving localhost or a console error', async () => {
    watchPage();
    await page.goto('/admin/queues');
    await page.getByText('FAILED', { exact: true }).first().waitFor();
    await page.goto(`/admin/queues/queue/${failedQueue()}?status=failed`);
    await page.locator(`a[href*="/queue/${failedQueue()}/${failedJobId}"]`).waitFor();
    await page.goto(`/admin/queues/queue/${failedQueue()}/${failedJobId}?status=failed`);
    // The board's next poll of its API, rather than 'networkidle': under load its polls of every queue can keep
    // the page from 500 ms without a request for longer than a test may wait.
    const nextPoll = page.waitForResponse((response) => new URL(response.url()).pathname.startsWith('/admin/queues/api/'), {
      timeout: 25_000,
    });
    await page.getByText(/substrate 0x[0-9a-f]{16} not found/).waitFor();
    await page.waitForLoadState('load');
    await nextPoll;
    expect(offsite).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  it('labels every icon-only button of the board, so a screen reader can name it', async () => {
    const unlabelled = async () =>
      page
        .locator('button')
        .evaluateAll((buttons) =>
          buttons
            .filter(
              (button) =>
                !button.textContent?.trim() &&
                !button.getAttribute('aria-label') &&
                !button.getAttribute('aria-labelledby') &&
                !button.getAttribute('title'),
            )
            .map((button) => button.outerHTML.slice(0, 160)),
        );
    await page.goto('/admin/queues');
    await page.getByText('FAILED', { exact: true }).first().waitFor();
    expect(await unlabelled()).toEqual([]);
    await page.goto(`/admin/queues/queue/${failedQueue()}/${failedJobId}?status=failed`);
    await page.getByText(/substrate 0x[0-9a-f]{16} not found/).waitFor();
    expect(await unlabelled()).toEqual([]);
    await page.locator('main').getByRole('button', { name: 'Retry', exact: true }).first().waitFor();
  });

  it('opens the failed job, retries it, and the job completes', async () => {
    await page
      .locator('aside')
      .getByRole('link', { name: app.deps.queues.forJob('invoke', failedJobId).name, exact: true })
      .click();
    await page.locator('main a[href*="status=failed"]').first().click();
    await page.locator(`a[href*="/queue/${failedQueue()}/${failedJobId}"]`).click();
    await page.getByText(/substrate 0x[0-9a-f]{16} not found/).waitFor();
    await shot('04-failed-job');

    // The job is fixable now: the same expression is the same substrate again.
    const recreated = await request('POST', '/api/v1/substrates', {
      token: alice.accessToken,
      body: { expression_type: 'expression', expression: 'x * y' },
    });
    expect(recreated.body.substrate_id).toBe(substrateId);

    const retry = page.locator('main button:has(svg.lucide-refresh-cw)').first();
    await retry.hover();
    await page.getByText('Retry', { exact: true }).first().waitFor(); // the icon's tooltip
    await retry.click();
    const confirm = page.getByRole('alertdialog').or(page.getByRole('dialog'));
    if (await confirm.isVisible().catch(() => false)) await confirm.getByRole('button', { name: /retry|confirm|ok/i }).click();

    const completed = await waitFor(async () => {
      const job = await request('GET', `/api/v1/jobs/${failedJobId}`, { token: alice.accessToken });
      return job.body.state === 'completed' ? job.body : null;
    });
    expect(completed).toMatchObject({ state: 'completed', attempts_made: 2, result: { substrate_id: substrateId, result: 42 } });
    expect(completed.error).toBeUndefined();

    await page.goto(`/admin/queues/queue/${failedQueue()}/${failedJobId}?status=completed`);
    await page.getByText('attempt #2').waitFor();
    await page.getByText('Finished at').waitFor();
    await page.getByText('returnValue').waitFor();
    await shot('05-completed-job');
  }, 90_000);

  it('logs out from the board menu, after which the board needs a login again', async () => {
    await page.goto('/admin/queues');
    await page.locator('header button[aria-haspopup=menu]').last().click();
    await page
      .getByRole('menuitem', { name: 'Log out' })
      .or(page.getByRole('link', { name: 'Log out' }))
      .first()
      .click();
    await page.waitForURL('**/admin/logout');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL('**/admin/login');
    await shot('06-logged-out');
    await page.goto('/admin/queues');
    expect(new URL(page.url()).pathname).toBe('/admin/login');
  });
});
