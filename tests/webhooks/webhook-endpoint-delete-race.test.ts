import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertDeliveries, type NewDelivery } from '../../db/repositories/webhook-deliveries.js';
import { messageIdFor } from '../../lib/webhooks/signing.js';
import { enqueueDeliveries } from '../../queue/webhook-queue.js';
import { registerUser, type TestUser } from '../helpers/accounts.js';
import { httpClient, waitFor } from '../helpers/http.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';
import { Receiver } from './receiver.js';

/**
 * A job finishing while its customer deletes an endpoint: the emitter read the endpoint, then the row went
 * away before the deliveries were inserted. The other deliveries of that job must still be stored and sent.
 */
let app: TestApp;
let request: ReturnType<typeof httpClient>;
let receiver: Receiver;

beforeAll(async () => {
  app = await startTestApp();
  await app.startWorkers();
  request = httpClient(app.baseUrl);
  receiver = await Receiver.start();
});

afterAll(async () => {
  await app?.close();
  await receiver?.close();
});

interface Customer {
  user: TestUser;
  customerId: string;
  jobId: string;
  endpointId: string;
}

/** A customer with one finished job and one endpoint (not yet deleted). */
async function customerWithEndpoint(path: string): Promise<Customer> {
  const user = await registerUser(request);
  const me = await request('GET', '/api/v1/auth/me', { token: user.accessToken });
  const job = await request('POST', '/api/v1/jobs', {
    token: user.accessToken,
    headers: { prefer: 'wait=10' },
    body: { type: 'invoke', payload: { operation: { op: 'multiply', dimension_values: [5, 7] } } },
  });
  expect(job.status, job.text).toBe(200);
  const endpoint = await request('POST', '/api/v1/webhooks', {
    token: user.accessToken,
    body: { url: receiver.url(path), events: ['job.completed'] },
  });
  expect(endpoint.status, endpoint.text).toBe(201);
  return { user, customerId: me.body.customer_id, jobId: job.body.id, endpointId: endpoint.body.id };
}

/** What the emitter builds for one receiver of the job's `job.completed`. */
function delivery(customer: Customer, endpointId: string | null, url: string): NewDelivery {
  const id = uuidv7();
  return {
    id,
    customerId: customer.customerId,
    endpointId,
    jobId: customer.jobId,
    url,
    eventType: 'job.completed',
    payload: { type: 'job.completed', timestamp: new Date().toISOString(), data: { job: { id: customer.jobId } } },
    messageId: messageIdFor(id),
    dedupeKey: `${customer.jobId}:${endpointId ?? 'webhook_url'}:job.completed`,
  };
}

const storedDeliveries = (jobId: string) =>
  app.sql<{ id: string; endpoint_id: string | null }>('select id, endpoint_id from webhook_deliveries where job_id = $1', [jobId]);

describe('deliveries of a job whose endpoint is deleted as it finishes', () => {
  it("stores and delivers the job's own webhook_url delivery when the endpoint row is already gone", async () => {
    const customer = await customerWithEndpoint('/deleted-before');
    expect((await request('DELETE', `/api/v1/webhooks/${customer.endpointId}`, { token: customer.user.accessToken })).status).toBe(204);
    const own = delivery(customer, null, receiver.url('/own-after-delete'));

    const ids = await insertDeliveries(app.deps.orm.em.fork(), [
      delivery(customer, customer.endpointId, receiver.url('/deleted-before')),
      own,
    ]);
    expect(ids).toEqual([own.id]);
    expect(await storedDeliveries(customer.jobId)).toEqual([{ id: own.id, endpoint_id: null }]);

    await enqueueDeliveries(app.deps.webhookQueue, ids);
    const [received] = await waitFor(async () => (receiver.at('/own-after-delete').length > 0 ? receiver.at('/own-after-delete') : null));
    const secret = await request('GET', '/api/v1/webhooks/secret', { token: customer.user.accessToken });
    expect(new Webhook(secret.body.secret).verify(received!.body, received!.headers as Record<string, string>)).toMatchObject({
      data: { job: { id: customer.jobId } },
    });
    expect(receiver.at('/deleted-before')).toHaveLength(0);
  });

  it('keeps the other deliveries when the delete commits while the insert waits on it', async () => {
    const customer = await customerWithEndpoint('/deleted-during');
    const own = delivery(customer, null, receiver.url('/own-during-delete'));
    const deleting = new pg.Client({ connectionString: app.config.databaseUrl });
    await deleting.connect();
    try {
      await deleting.query('begin');
      await deleting.query('delete from webhook_endpoints where id = $1', [customer.endpointId]);
      const inserting = insertDeliveries(app.deps.orm.em.fork(), [
        delivery(customer, customer.endpointId, receiver.url('/deleted-during')),
        own,
      ]);
      // The insert is blocked on the uncommitted delete's row lock; only then does the delete commit.
      await waitFor(async () => {
        const waiting = await app.sql<{ count: string }>(
          `select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query ilike '%webhook_deliveries%' and datname = current_database()`,
        );
        return Number(waiting[0]?.count) > 0;
      });
      await deleting.query('commit');
      expect(await inserting).toEqual([own.id]);
    } finally {
      await deleting.end();
    }
    expect(await storedDeliveries(customer.jobId)).toEqual([{ id: own.id, endpoint_id: null }]);
  });
});
