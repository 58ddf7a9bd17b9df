import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { Job } from './types.js';

/** The body of a Chrysalis webhook delivery. */
export interface WebhookEvent {
  type: 'job.completed' | 'job.failed' | 'batch.completed' | (string & {});
  timestamp?: string;
  data: { job: Job } & Record<string, unknown>;
}

export { WebhookVerificationError };

/** Plain header objects: Node's `req.headers`, Express's, or `{ 'webhook-id': …, … }`. */
export type HeaderObject =
  | { readonly [name: string]: unknown }
  | { readonly 'webhook-id': string; readonly 'webhook-timestamp': string; readonly 'webhook-signature': string };

/**
 * Verifies a delivery's Standard Webhooks signature (`webhook-id`, `webhook-timestamp`, `webhook-signature`,
 * timestamps older than 5 minutes refused) and returns its parsed body. `secret` is the endpoint's `whsec_…`
 * (POST /webhooks) or, for a job's own `webhook_url`, the account secret (GET /webhooks/secret). `rawBody`
 * must be the bytes as received, before any JSON parsing. Throws WebhookVerificationError when forged.
 */
export function verifyWebhook(secret: string, rawBody: string | Buffer, headers: Headers | HeaderObject): WebhookEvent {
  const plain: Record<string, string> = {};
  if (headers instanceof Headers) headers.forEach((value, name) => (plain[name] = value));
  else
    for (const [name, value] of Object.entries(headers))
      if (value !== undefined) plain[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : String(value);
  return new Webhook(secret).verify(typeof rawBody === 'string' ? rawBody : rawBody.toString('utf8'), plain) as WebhookEvent;
}
