import { randomBytes } from 'node:crypto';
import type { httpClient, HttpResponse } from './http.js';
import { waitFor } from './http.js';

type Request = ReturnType<typeof httpClient>;

/** One of every resource a customer can own, made through the API. */
export interface TenantResources {
  customerId: string;
  /** A constant substrate (metadata `{owner: label}`) and an expression one, joined by `relationshipId`. */
  substrateId: string;
  otherSubstrateId: string;
  relationshipId: string;
  /** A finished invoke job and a finished batch (a batch is a job too). */
  jobId: string;
  batchId: string;
  /** A cron schedule that does not fire during a test run. */
  scheduleName: string;
  /** An endpoint subscribed to job.completed, and one delivery to it (null when `awaitDelivery` is false). */
  webhookId: string;
  deliveryId: string | null;
  apiKeyId: string;
  /** The API key itself (`sk_live_…`). */
  apiKey: string;
}

export interface CreateResourcesOptions {
  /** A URL that answers 2xx (tests/webhooks/receiver.ts), so the delivery settles as delivered. */
  webhookUrl: string;
  /** Distinguishes this tenant's names and values. */
  label: string;
  /** Wait for the jobs to finish and the delivery to be recorded (needs running workers). Default true. */
  awaitFinished?: boolean;
}

function created(response: HttpResponse, what: string, statuses = [200, 201, 202]): HttpResponse {
  if (!statuses.includes(response.status)) throw new Error(`creating ${what}: ${response.status} ${response.text}`);
  return response;
}

/**
 * Creates one of each resource for the holder of `token` (a user's access token), every one through the
 * public API, and waits (with workers running) until the jobs are final and the webhook delivery exists.
 */
export async function createTenantResources(request: Request, token: string, options: CreateResourcesOptions): Promise<TenantResources> {
  const { label, webhookUrl, awaitFinished = true } = options;
  const me = created(await request('GET', '/api/v1/auth/me', { token }), 'me');
  const constant = created(
    await request('POST', '/api/v1/substrates', { token, body: { expression_type: 'constant', value: 7, metadata: { owner: label } } }),
    'substrate',
  );
  const expression = created(
    await request('POST', '/api/v1/substrates', { token, body: { expression_type: 'expression', expression: 'x * 3' } }),
    'substrate',
  );
  const substrateId = constant.body.substrate_id as string;
  const otherSubstrateId = expression.body.substrate_id as string;
  const relationship = created(
    await request('POST', '/api/v1/relationships', {
      token,
      body: { source_id: substrateId, target_id: otherSubstrateId, type: 'DEPENDENCY', metadata: { owner: label } },
    }),
    'relationship',
  );
  const webhook = created(
    await request('POST', '/api/v1/webhooks', { token, body: { url: webhookUrl, events: ['job.completed'] } }),
    'webhook',
  );
  const job = created(
    await request('POST', '/api/v1/jobs', { token, body: { type: 'invoke', payload: { substrate_id: substrateId } } }),
    'job',
  );
  const batch = created(
    await request('POST', '/api/v1/batches', {
      token,
      body: { invocations: [{ substrate_id: otherSubstrateId, parameters: { x: 2 } }, { substrate_id: substrateId }] },
    }),
    'batch',
  );
  const scheduleName = `${label}-nightly-${randomBytes(3).toString('hex')}`;
  created(
    await request('POST', '/api/v1/schedules', {
      token,
      body: { name: scheduleName, cron: '0 3 1 1 *', job: { type: 'invoke', payload: { substrate_id: substrateId } } },
    }),
    'schedule',
  );
  const key = created(
    await request('POST', '/api/v1/api-keys', { token, body: { name: `${label} key`, service_type: 'compute' } }),
    'API key',
  );

  let deliveryId: string | null = null;
  if (awaitFinished) {
    for (const id of [job.body.id as string, batch.body.id as string]) {
      await waitFor(
        async () => ['completed', 'failed'].includes((await request('GET', `/api/v1/jobs/${id}`, { token })).body.state),
        // A file that starts with the suite shares 2 cores with a dozen others starting up: 20 s ran out once.
        60_000,
      );
    }
    deliveryId = await waitFor(async () => {
      const deliveries = await request('GET', `/api/v1/webhooks/${webhook.body.id}/deliveries`, { token });
      // Both jobs emit job.completed; wait until both deliveries have settled, so nothing changes later.
      const settled = (deliveries.body.items as Array<{ id: string; state: string }>).filter((d) => d.state === 'succeeded');
      return settled.length >= 2 ? (settled[0]?.id ?? null) : null;
    }, 60_000);
  }

  return {
    customerId: me.body.customer_id,
    substrateId,
    otherSubstrateId,
    relationshipId: relationship.body.id,
    jobId: job.body.id,
    batchId: batch.body.id,
    scheduleName,
    webhookId: webhook.body.id,
    deliveryId,
    apiKeyId: key.body.id,
    apiKey: key.body.key,
  };
}
