import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';

/** Git-ignored (.data/): what each page looks like, for a person to check. */
export const consoleScreenshots = path.resolve('.data/screenshots/console');

/**
 * Pages of the console in one browser, each in its own context (its own session), that record uncaught
 * page errors, CSP violations and any request leaving this machine in `problems` (a console page has none).
 */
export function consolePages(browser: () => Browser, baseUrl: () => string) {
  const problems: string[] = [];

  async function newPage(width = 1400, height = 900): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser().newContext({ baseURL: baseUrl(), viewport: { width, height } });
    await context.route(
      (url) => !['127.0.0.1', 'localhost'].includes(url.hostname),
      (route) => {
        problems.push(`offsite request ${route.request().url()}`);
        return route.abort();
      },
    );
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
    });
    page.setDefaultTimeout(20_000);
    return { context, page };
  }

  /** Through the sign-in form, as a person does; whatever the console keeps of the session is its own business. */
  async function signIn(page: Page, email: string, password: string): Promise<void> {
    await page.goto('/console');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/console/jobs');
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(consoleScreenshots, `${name}.png`), fullPage: true });

  return { problems, newPage, signIn, shot };
}
