import { registerUser, type TestUser } from './accounts.js';
import type { Suite } from './suite.js';
import { createExpressionSubstrate } from './substrates.js';

export interface Customer {
  user: TestUser;
  id: string;
  substrateId: string;
}

/** A newly registered customer with one `x * 2` substrate, and the submits the bulk and admission tests make. */
export function bulkCustomers(suite: Suite) {
  const invoke = (customer: Customer, x = 1) => ({ type: 'invoke', payload: { substrate_id: customer.substrateId, parameters: { x } } });
  return {
    async newCustomer(): Promise<Customer> {
      const user = await registerUser(suite.request);
      const id = (await suite.request('GET', '/api/v1/auth/me', { token: user.accessToken })).body.customer_id;
      return { user, id, substrateId: await createExpressionSubstrate(suite.request, user.accessToken, 'x * 2') };
    },
    invoke,
    bulk: (customer: Customer, count: number) =>
      suite.request('POST', '/api/v1/jobs/bulk', {
        token: customer.user.accessToken,
        body: { jobs: Array.from({ length: count }, (_, i) => invoke(customer, i)) },
      }),
    submit: (customer: Customer) => suite.request('POST', '/api/v1/jobs', { token: customer.user.accessToken, body: invoke(customer) }),
    countJobs: async (customer: Customer) =>
      Number((await suite.app.sql<{ n: string }>('select count(*) as n from jobs where customer_id = $1', [customer.id]))[0]!.n),
  };
}
