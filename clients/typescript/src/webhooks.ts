import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { Job } from './types.js';

/**
 * The job as a webhook event carries it: as GET /jobs/:id shows it, plus its link. A result over the server's
 * WEBHOOK_RESULT_MAX_BYTES is left out: then `result_omitted` is true, `result_bytes` its size, and the result is
 * read from `links.self`.
 */
export type WebhookJob = Job & {
  links?: { self: string };
  result_omitted?: true;
  result_bytes?: number;
};

/** The body of a Chrysalis webhook delivery. */
export interface WebhookEvent {
  type: 'job.completed' | 'job.failed' | 'batch.completed' | (string & {});
  timestamp?: string;
  data: { job: WebhookJob } & Record<string, unknown>;
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
