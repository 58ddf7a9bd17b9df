import { lookup } from 'node:dns/promises';
import dns from 'node:dns';
import { isIP, Socket, type LookupFunction, type TcpNetConnectOpts } from 'node:net';
import type { Duplex } from 'node:stream';
import ipaddr from 'ipaddr.js';
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent';

/** How long registration waits for DNS before refusing a host. */
const lookupTimeoutMs = 5000;

// ipaddr.js counts ::/96 (IPv4-compatible, deprecated by RFC 4291) as unicast, yet ::127.0.0.1 may reach the
// IPv4 address it embeds; no receiver has such an address.
const ipv4Compatible = ipaddr.IPv6.parseCIDR('::/96');

/** ipaddr.js's name for the address's range, with ::/96 named `ipv4Compatible` instead of `unicast`. */
function rangeOf(address: string): string {
  const parsed = ipaddr.parse(address);
  const range = parsed.range();
  if (range === 'unicast' && parsed instanceof ipaddr.IPv6 && parsed.match(ipv4Compatible)) return 'ipv4Compatible';
  return range;
}

/**
 * Why an address may not receive webhooks, or null when it may. Only public unicast: loopback, RFC 1918,
 * fc00::/7, link-local (the 169.254.169.254 metadata service too), CGNAT and unspecified addresses are
 * refused, and so is every IPv6 form that embeds an IPv4 address — IPv4-compatible (::/96), IPv4-mapped,
 * IPv4-translated, NAT64 (64:ff9b::/96, 64:ff9b:1::/48), 6to4 (2002::/16) and Teredo (2001::/32) —
 * whatever address it embeds. Delivery applies the same rule when it connects (deliveryAgents).
 */
export function refusedAddress(address: string): string | null {
  const range = rangeOf(address);
  return range === 'unicast' ? null : `${address} is a ${range} address`;
}

export interface HostRefusal {
  /** E.g. `localhost resolves to 127.0.0.1 is a loopback address`. */
  reason: string;
  /** The refused address; null when the host does not resolve at all. */
  address: string | null;
}

/**
 * Checks a URL's host at registration: an IP literal directly, a name by resolving every address it has.
 * Null when it may be used. Delivery checks again at connect time, so a name that later resolves
 * somewhere private (DNS rebinding) is still refused.
 */
export async function refusedWebhookHost(url: URL): Promise<HostRefusal | null> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host)) {
    const reason = refusedAddress(host);
    return reason ? { reason, address: host } : null;
  }
  let addresses: string[];
  try {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), lookupTimeoutMs).unref());
    addresses = (await Promise.race([lookup(host, { all: true, verbatim: true }), timeout])).map((entry) => entry.address);
  } catch {
    return { reason: `${host} does not resolve`, address: null };
  }
  for (const address of addresses) {
    const reason = refusedAddress(address);
    if (reason) return { reason: `${host} resolves to ${reason}`, address };
  }
  return null;
}

export interface DeliveryAgents {
  http: RequestFilteringHttpAgent;
  https: RequestFilteringHttpsAgent;
}

type ConnectionListener = (error: Error | null, socket: Duplex) => void;

function notAllowed(address: string, hostname: string | undefined): Error | null {
  const reason = refusedAddress(address);
  return reason ? new Error(`connecting to ${address}${hostname ? ` (${hostname})` : ''} is not allowed: ${reason}`) : null;
}

/** Wraps a resolver so an address refusedAddress refuses fails the lookup, before any connection. */
function guardedLookup(resolve: LookupFunction): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, options, ((error: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => {
      if (error) return callback(error, address as string, family);
      const addresses = typeof address === 'string' ? [address] : address.map((entry) => entry.address);
      const refused = addresses.map((each) => notAllowed(each, hostname)).find(Boolean);
      if (refused) return callback(refused, '', 0);
      (callback as (...args: unknown[]) => void)(null, address, family);
    }) as Parameters<LookupFunction>[2]);
  };
}

/**
 * request-filtering-agent's connect-time check, plus refusedAddress's ranges it lets through (::/96): an IP
 * literal is checked before connecting, a name's every resolved address before the socket connects.
 */
function guardConnection(
  options: TcpNetConnectOpts,
  listener: ConnectionListener | undefined,
  connect: (options: TcpNetConnectOpts, listener?: ConnectionListener) => Duplex,
): Duplex {
  const refused = options.host && isIP(options.host) ? notAllowed(options.host, undefined) : null;
  if (refused) {
    const socket = new Socket();
    if (listener) listener(refused, socket);
    else socket.destroy(refused);
    return socket;
  }
  return connect({ ...options, lookup: guardedLookup(options.lookup ?? (dns.lookup as LookupFunction)) }, listener);
}

class GuardedHttpAgent extends RequestFilteringHttpAgent {
  override createConnection(options: TcpNetConnectOpts, listener?: ConnectionListener): Duplex {
    return guardConnection(options, listener, (guarded, next) => super.createConnection(guarded, next));
  }
}

class GuardedHttpsAgent extends RequestFilteringHttpsAgent {
  override createConnection(options: TcpNetConnectOpts, listener?: ConnectionListener): Duplex {
    return guardConnection(options, listener, (guarded, next) => super.createConnection(guarded, next));
  }
}

/**
 * Agents that check the address when they connect (a name that resolves somewhere private by then, DNS
 * rebinding, is refused too). `allowPrivate` is WEBHOOK_ALLOW_PRIVATE: it lets every address through.
 */
export function deliveryAgents(allowPrivate: boolean): DeliveryAgents {
  const options = { allowPrivateIPAddress: allowPrivate, keepAlive: false };
  if (allowPrivate) return { http: new RequestFilteringHttpAgent(options), https: new RequestFilteringHttpsAgent(options) };
  return { http: new GuardedHttpAgent(options), https: new GuardedHttpsAgent(options) };
}
