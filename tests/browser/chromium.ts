import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';

const chromiumPath = '/usr/bin/chromium';
const run = promisify(execFile);

/**
 * Debian's chromium; a fresh machine (CI) installs it here, which can take minutes. The browser test files run
 * in parallel and each may find it missing: one installs under a lock file while the others wait for it, then
 * find it there (two `apt-get install` at once: the second failed on dpkg's lock, CI's only failure once).
 */
export async function ensureChromium(): Promise<void> {
  if (existsSync(chromiumPath)) return;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = `[ -x ${chromiumPath} ] || { apt-get update && apt-get -o DPkg::Lock::Timeout=600 install -y chromium; }`;
  await run('flock', [path.join(tmpdir(), 'chrysalis-chromium-install.lock'), 'sh', '-c', install], { env, maxBuffer: 64 * 1024 * 1024 });
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
