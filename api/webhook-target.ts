import { z } from 'zod';
import type { Config } from '../config.js';
import { refusedWebhookHost } from '../lib/webhooks/address-guard.js';
import { ProblemError } from './problems.js';

/**
 * A webhook URL as given: http or https with `//` and a host (`http:/host` and `http:host`, which a URL parser
 * would mend, are refused), at most 2,048 characters. POST /webhooks' `url` and a job's `webhook_url` alike.
 */
// The length gets its own message: the URL's `error` would otherwise answer a long http URL "must be an http or https URL".
export const webhookUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
  .max(2048, 'is too long: at most 2,048 characters');

/**
 * Refuses a webhook URL at registration (POST /webhooks, a job's `webhook_url`): not http(s) is a 400,
 * a host that is or resolves to a loopback, private, link-local, CGNAT or unspecified address, or an IPv6
 * form embedding an IPv4 one (refusedAddress), a 422 naming `field` — unless WEBHOOK_ALLOW_PRIVATE.
 * Delivery checks the address again when it connects. An address refusal names WEBHOOK_ALLOW_PRIVATE.
 */
export async function assertWebhookTarget(config: Pick<Config, 'webhookAllowPrivate'>, url: string, field: string): Promise<void> {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ProblemError('validation', `${field} must be an http or https URL`, {
      errors: [{ field, message: 'must be an http or https URL' }],
    });
  }
  if (config.webhookAllowPrivate) return;
  const refusal = await refusedWebhookHost(parsed);
  if (!refusal) return;
  // A local receiver refused with no way forward is the first wall a new user hits; the setting that
  // lifts it is named with its risk, since it opens the internal network to whoever registers a URL.
  const hint = refusal.address
    ? ' For local development and tests, start Chrysalis with WEBHOOK_ALLOW_PRIVATE=true (not in production: it lets any customer make it call internal addresses).'
    : '';
  throw new ProblemError('unprocessable', `${field} is not a deliverable webhook URL: ${refusal.reason}.${hint}`, {
    errors: [{ field, message: refusal.reason }],
  });
}
