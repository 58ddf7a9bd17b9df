import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';

const chromiumPath = '/usr/bin/chromium';
const run = promisify(execFile);

/** Debian's chromium; a fresh machine (CI) installs it here, which can take minutes. */
export async function ensureChromium(): Promise<void> {
  if (existsSync(chromiumPath)) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await run('apt-get', ['update'], { env, maxBuffer: 64 * 1024 * 1024 });
  await run('apt-get', ['install', '-y', 'chromium'], { env, maxBuffer: 64 * 1024 * 1024 });
}

/** Headless Chromium as the browser tests drive it: no sandbox (containers), no GPU, no calls home. */
export async function launchChromium(): Promise<Browser> {
  await ensureChromium();
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
