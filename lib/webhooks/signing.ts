import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** A new signing secret in the Standard Webhooks form: `whsec_` + base64 of 32 random bytes. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

/** The `webhook-id` of a delivery: stable across every attempt and redelivery, so receivers can drop duplicates. */
export const messageIdFor = (deliveryId: string): string => `msg_${deliveryId.replaceAll('-', '')}`;

export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * Standard Webhooks headers for one attempt. The timestamp is the attempt's own (receivers reject
 * signatures older than five minutes), so each retry is signed afresh under the same `webhook-id`.
 */
export function signatureHeaders(secret: string, messageId: string, body: string, at: Date = new Date()): SignatureHeaders {
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(messageId, at, body),
  };
}
