import http from 'node:http';
import https from 'node:https';
import type { DeliveryAgents } from '../../lib/webhooks/address-guard.js';

/** A receiver has this long, from connect to the end of its answer. */
export const deliveryTimeoutMs = 10_000;

export interface PostOutcome {
  /** The receiver's HTTP status; null when none came (refused address, timeout, connection error). */
  statusCode: number | null;
  durationMs: number;
  /** Why it is not a success; null for 2xx. */
  error: string | null;
}

export interface PostRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
  agents: DeliveryAgents;
  /** Default 10 s. */
  timeoutMs?: number;
}

const responseBodyLimit = 64 * 1024;

/**
 * POSTs one webhook with node's http client: it follows no redirects, and the filtering agent checks
 * the address it connects to. Never throws: every outcome is something to record.
 */
export function postWebhook(request: PostRequest): Promise<PostOutcome> {
  const timeoutMs = request.timeoutMs ?? deliveryTimeoutMs;
  const started = performance.now();
  const url = new URL(request.url);
  const secure = url.protocol === 'https:';
  const signal = AbortSignal.timeout(timeoutMs);

  return new Promise((resolve) => {
    let settled = false;
    const settle = (statusCode: number | null, error: string | null) => {
      if (settled) return;
      settled = true;
      resolve({ statusCode, durationMs: Math.round(performance.now() - started), error });
    };
    const options: http.RequestOptions = {
      method: 'POST',
      agent: secure ? request.agents.https : request.agents.http,
      signal,
      headers: {
        ...request.headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(request.body)),
        'user-agent': 'Chrysalis-Webhooks/1.0',
      },
    };
    const req = (secure ? https : http).request(url, options, (res) => {
      const status = res.statusCode ?? 0;
      let received = 0;
      // Read (and drop) the answer so the exchange completes; a receiver that streams forever meets the timeout.
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > responseBodyLimit) res.destroy();
      });
      const finish = () => settle(status, statusError(status, res.headers.location));
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', finish);
    });
    req.on('error', (error) => settle(null, signal.aborted ? `no answer within ${timeoutMs} ms` : error.message));
    req.end(request.body);
  });
}

function statusError(status: number, location: string | undefined): string | null {
  if (status >= 200 && status < 300) return null;
  if (status >= 300 && status < 400) return `redirect (${status}${location ? ` to ${location}` : ''}) not followed`;
  return `receiver answered ${status}`;
}
