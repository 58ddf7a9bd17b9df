import { randomBytes } from 'node:crypto';
import { expectCall } from './http.js';

export type Tier = 'starter' | 'pro' | 'enterprise';

/** A customer of the instance under test: an account with a user token and a compute API key. */
export interface Customer {
  name: string;
  email: string;
  password: string;
  customerId: string;
  /** User access token (JWT), for the calls an API key may not make. */
  accessToken: string;
  /** `sk_live_…` compute key: what the customer's programs use. */
  key: string;
  tier: Tier;
}

/**
 * Registers a customer through the public API and, for `pro` or `enterprise`, deposits and upgrades its
 * compute service the way a customer does (`POST /billing/deposits`, `PUT /services/compute`); the
 * development escrow adapter confirms deposits at once.
 */
export async function createCustomer(api: string, name: string, tier: Tier): Promise<Customer> {
  const email = `noisy-${name}-${randomBytes(4).toString('hex')}@example.test`;
  const password = `noisy password ${randomBytes(4).toString('hex')}`;
  await expectCall(api, 'POST', '/auth/register', [201], { body: { email, password, accept_tos: true, tos_version: '1.0.0' } });
  const login = await expectCall(api, 'POST', '/auth/login', [200], { body: { email, password } });
  const accessToken = login.body.access_token as string;
  const me = await expectCall(api, 'GET', '/auth/me', [200], { token: accessToken });
  if (tier !== 'starter') {
    await expectCall(api, 'POST', '/billing/deposits', [200, 201], { token: accessToken, body: { amount_usd_cents: 1_000_000 } });
    await expectCall(api, 'PUT', '/services/compute', [200], { token: accessToken, body: { tier, enabled: true } });
  }
  const key = await expectCall(api, 'POST', '/api-keys', [201], { token: accessToken, body: { name, service_type: 'compute' } });
  return { name, email, password, customerId: me.body.customer_id as string, accessToken, key: key.body.key as string, tier };
}

/** Creates (or finds) an expression substrate owned by `customer`; returns its id. */
export async function createSubstrate(api: string, customer: Customer, expression: string): Promise<string> {
  const answer = await expectCall(api, 'POST', '/substrates', [200, 201], {
    token: customer.key,
    body: { expression_type: 'expression', expression },
  });
  return answer.body.substrate_id as string;
}
