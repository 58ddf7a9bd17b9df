import { describe, expect, it } from 'vitest';
import { refusedAddress, refusedWebhookHost } from '../../workers/webhooks/address-guard.js';

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

  it.each(['93.184.215.14', '8.8.8.8', '2606:4700:4700::1111'])('allows the public address %s', (address) => {
    expect(refusedAddress(address)).toBeNull();
  });

  it('checks IP literals in URLs (brackets and all) without DNS, and resolves names', async () => {
    expect(await refusedWebhookHost(new URL('http://[::1]:8080/x'))).toBe('::1 is a loopback address');
    expect(await refusedWebhookHost(new URL('http://0x7f.1/x'))).toBe('127.0.0.1 is a loopback address');
    expect(await refusedWebhookHost(new URL('http://localhost/x'))).toMatch(/^localhost resolves to .* is a loopback address$/);
    expect(await refusedWebhookHost(new URL('https://93.184.215.14/x'))).toBeNull();
    expect(await refusedWebhookHost(new URL('http://no-such-host.invalid/x'))).toBe('no-such-host.invalid does not resolve');
  });
});
