import http from 'node:http';
import type { LookupFunction } from 'node:net';
import { describe, expect, it } from 'vitest';
import { deliveryAgents, refusedAddress, refusedWebhookHost } from '../../lib/webhooks/address-guard.js';
import { postWebhook } from '../../workers/webhooks/post-webhook.js';

/** Why registration refuses the URL's host, or null. */
const reasonFor = async (url: URL) => (await refusedWebhookHost(url))?.reason ?? null;

describe('webhook address guard', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.0.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['::1', 'loopback'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['fe80::1', 'linkLocal'],
    ['::', 'unspecified'],
    ['::ffff:127.0.0.1', 'ipv4Mapped'],
  ])('refuses %s as %s', (address, range) => {
    expect(refusedAddress(address)).toBe(`${address} is a ${range} address`);
  });

  // IPv6 forms that carry an IPv4 address: each is refused whatever it embeds (a receiver has a native address).
  it.each([
    ['::7f00:1', 'ipv4Compatible'], // ::127.0.0.1, IPv4-compatible (deprecated, ::/96)
    ['::a9fe:a9fe', 'ipv4Compatible'], // ::169.254.169.254, the metadata service
    ['::808:808', 'ipv4Compatible'], // ::8.8.8.8: the whole range, not only private embeddings
    ['::ffff:a9fe:a9fe', 'ipv4Mapped'],
    ['::ffff:0:7f00:1', 'rfc6145'], // IPv4-translated
    ['64:ff9b::7f00:1', 'rfc6052'], // NAT64 well-known prefix
    ['64:ff9b::a9fe:a9fe', 'rfc6052'],
    ['64:ff9b:1::a00:1', 'rfc6052'], // NAT64 local-use prefix
    ['2002:c0a8:101::1', '6to4'], // 6to4 of 192.168.1.1
    ['2002:7f00:1::1', '6to4'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'teredo'],
  ])('refuses the IPv4-embedding address %s as %s', (address, range) => {
    expect(refusedAddress(address)).toBe(`${address} is a ${range} address`);
  });

  it.each(['93.184.215.14', '8.8.8.8', '2606:4700:4700::1111'])('allows the public address %s', (address) => {
    expect(refusedAddress(address)).toBeNull();
  });

  it('checks IP literals in URLs (brackets and all) without DNS, and resolves names', async () => {
    expect(await reasonFor(new URL('http://[::1]:8080/x'))).toBe('::1 is a loopback address');
    expect(await reasonFor(new URL('http://0x7f.1/x'))).toBe('127.0.0.1 is a loopback address');
    expect(await reasonFor(new URL('http://localhost/x'))).toMatch(/^localhost resolves to .* is a loopback address$/);
    expect(await reasonFor(new URL('https://93.184.215.14/x'))).toBeNull();
    expect(await reasonFor(new URL('http://no-such-host.invalid/x'))).toBe('no-such-host.invalid does not resolve');
  });

  it('checks IPv4-compatible literals however they are written', async () => {
    expect(await reasonFor(new URL('http://[::127.0.0.1]/x'))).toBe('::7f00:1 is a ipv4Compatible address');
    expect(await reasonFor(new URL('http://[0:0:0:0:0:0:a9fe:a9fe]/x'))).toBe('::a9fe:a9fe is a ipv4Compatible address');
  });
});

/**
 * The delivery agents refuse before connecting. Only addresses that embed 127.0.0.1 are used here, so even a
 * guard that failed would send nothing off this machine.
 */
describe('webhook delivery agents (WEBHOOK_ALLOW_PRIVATE=false)', () => {
  const agents = deliveryAgents(false);

  /** What the agent answers to a POST to `url`, with DNS answered by `lookup` when given. */
  const connectError = (url: string, lookup?: LookupFunction) =>
    new Promise<string>((resolve) => {
      const req = http.request(url, { method: 'POST', agent: agents.http, ...(lookup ? { lookup } : {}) }, (res) => {
        res.resume();
        resolve(`answered ${res.statusCode}`);
      });
      req.on('error', (error) => resolve(error.message));
      req.end();
    });

  /** A resolver that answers every name with `address`, as a rebinding DNS server would. */
  const resolvingTo =
    (address: string): LookupFunction =>
    (_hostname, options, callback) => {
      const family = address.includes(':') ? 6 : 4;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- node calls back with either shape
      const answer = callback as (...args: any[]) => void;
      if (options.all) answer(null, [{ address, family }]);
      else answer(null, address, family);
    };

  it('refuses an IPv4-compatible literal at connect time', async () => {
    expect(await connectError('http://[::7f00:1]:9/hook')).toMatch(/::7f00:1.*not allowed/);
  });

  it('refuses a name that resolves to an IPv4-compatible address at connect time (DNS rebinding)', async () => {
    expect(await connectError('http://rebound.invalid:9/hook', resolvingTo('::7f00:1'))).toMatch(/::7f00:1.*not allowed/);
  });

  it.each(['::ffff:7f00:1', '64:ff9b::7f00:1', '2002:7f00:1::1'])('refuses a name that resolves to %s at connect time', async (address) => {
    expect(await connectError('http://rebound.invalid:9/hook', resolvingTo(address))).toMatch(/not allowed/);
  });

  it('records the refusal as a failed post with no status', async () => {
    const outcome = await postWebhook({ url: 'http://[::7f00:1]:9/hook', body: '{}', headers: {}, agents });
    expect(outcome).toMatchObject({ statusCode: null, error: expect.stringMatching(/::7f00:1.*not allowed/) });
  });
});
