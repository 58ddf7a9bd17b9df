import fs from 'node:fs';
import path from 'node:path';

export interface DemoSettings {
  /** The running instance, e.g. http://127.0.0.1:3000. */
  baseUrl: string;
  adminEmail: string;
  adminPassword: string;
  /** Password of the demo customers. */
  demoPassword: string;
  /** Where demo webhooks point; always a loopback address. */
  webhookUrl: string;
}

export class DemoSettingsError extends Error {
  override name = 'DemoSettingsError';
}

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Only loopback webhook targets: demo data must never make a running instance call out to another host. */
export function isLoopbackUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') &&
      (loopbackHosts.has(url.hostname) || /^127(\.\d{1,3}){3}$/.test(url.hostname))
    );
  } catch {
    return false;
  }
}

/**
 * Settings from the environment (and `.env`, read by the caller), falling back to what `npm start` uses:
 * CHRYSALIS_BASE_URL (else http://127.0.0.1:$PORT, PORT 3000), ADMIN_EMAIL (else admin@chrysalis.local),
 * ADMIN_PASSWORD (else the one generated into DATA_DIR/secrets.json), DEMO_PASSWORD, DEMO_WEBHOOK_URL.
 */
export function demoSettings(env: NodeJS.ProcessEnv = process.env): DemoSettings {
  const baseUrl = env.CHRYSALIS_BASE_URL || `http://127.0.0.1:${env.PORT || 3000}`;
  let adminPassword = env.ADMIN_PASSWORD;
  if (!adminPassword) {
    const secrets = path.resolve(env.DATA_DIR || '.data', 'secrets.json');
    if (!fs.existsSync(secrets))
      throw new DemoSettingsError(
        `ADMIN_PASSWORD is not set and ${secrets} does not exist: set ADMIN_EMAIL and ADMIN_PASSWORD of the running instance`,
      );
    adminPassword = (JSON.parse(fs.readFileSync(secrets, 'utf8')) as { ADMIN_PASSWORD?: string }).ADMIN_PASSWORD;
    if (!adminPassword) throw new DemoSettingsError(`${secrets} holds no ADMIN_PASSWORD: set ADMIN_PASSWORD`);
  }
  const webhookUrl = env.DEMO_WEBHOOK_URL || 'http://127.0.0.1:9/chrysalis-demo-webhook';
  if (!isLoopbackUrl(webhookUrl))
    throw new DemoSettingsError(
      `DEMO_WEBHOOK_URL must be a loopback address (127.0.0.1, localhost, [::1]); demo data never sends webhooks to another host`,
    );
  return {
    baseUrl,
    adminEmail: env.ADMIN_EMAIL || 'admin@chrysalis.local',
    adminPassword,
    demoPassword: env.DEMO_PASSWORD || 'demo-password-123',
    webhookUrl,
  };
}
