import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent';

/** How long registration waits for DNS before refusing a host. */
const lookupTimeoutMs = 5000;

/**
 * Why an address may not receive webhooks, or null when it may. The rule is request-filtering-agent's
 * (which guards delivery): only public unicast, so loopback, RFC 1918, fc00::/7, link-local (the
 * 169.254.169.254 metadata service too), CGNAT, unspecified and IPv4-mapped addresses are refused.
 */
export function refusedAddress(address: string): string | null {
  const range = ipaddr.parse(address).range();
  return range === 'unicast' ? null : `${address} is a ${range} address`;
}

/**
 * Checks a URL's host at registration: an IP literal directly, a name by resolving every address it has.
 * Null when it may be used. Delivery checks again at connect time, so a name that later resolves
 * somewhere private (DNS rebinding) is still refused.
 */
export async function refusedWebhookHost(url: URL): Promise<string | null> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host)) return refusedAddress(host);
  let addresses: string[];
  try {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), lookupTimeoutMs).unref());
    addresses = (await Promise.race([lookup(host, { all: true, verbatim: true }), timeout])).map((entry) => entry.address);
  } catch {
    return `${host} does not resolve`;
  }
  for (const address of addresses) {
    const reason = refusedAddress(address);
    if (reason) return `${host} resolves to ${reason}`;
  }
  return null;
}

export interface DeliveryAgents {
  http: RequestFilteringHttpAgent;
  https: RequestFilteringHttpsAgent;
}

/** Agents that check the resolved address when they connect. `allowPrivate` is WEBHOOK_ALLOW_PRIVATE. */
export function deliveryAgents(allowPrivate: boolean): DeliveryAgents {
  const options = { allowPrivateIPAddress: allowPrivate, keepAlive: false };
  return { http: new RequestFilteringHttpAgent(options), https: new RequestFilteringHttpsAgent(options) };
}
