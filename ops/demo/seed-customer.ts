import { ChrysalisClient, ChrysalisProblem, unwrap, type Job, type JobAccepted, type SubmitJobRequest } from '@chrysalis/client';

export interface DemoCustomer {
  name: string;
  email: string;
  /** The compute tier the customer is moved to (a deposit pays for it). */
  tier: 'starter' | 'pro';
}

export const demoCustomers: readonly DemoCustomer[] = [
  { name: 'Ada', email: 'ada.demo@example.com', tier: 'pro' },
  { name: 'Grace', email: 'grace.demo@example.com', tier: 'starter' },
];

export interface SeededCustomer {
  email: string;
  customerId: string;
  substrates: string[];
  jobs: Record<string, string>;
  batchId: string;
  schedules: string[];
  webhook: 'created' | 'existing' | 'refused by the instance';
}

/** Registers the customer (or logs in when it already exists) and returns a client acting as it. */
async function signIn(baseUrl: string, customer: DemoCustomer, password: string): Promise<ChrysalisClient> {
  const anonymous = new ChrysalisClient({ baseUrl });
  const tos = await unwrap(anonymous.api.GET('/tos'));
  const registered = await anonymous.api.POST('/auth/register', {
    body: { email: customer.email, password, accept_tos: true, tos_version: tos.version },
  });
  if (!registered.response.ok && registered.response.status !== 409) throw ChrysalisProblem.from(registered.response, registered.error);
  const tokens = await unwrap(anonymous.api.POST('/auth/login', { body: { email: customer.email, password } }));
  return new ChrysalisClient({ baseUrl, token: tokens.access_token });
}

/** Submits under an Idempotency-Key, so a second run finds the job of the first instead of making another. */
async function once(client: ChrysalisClient, key: string, job: SubmitJobRequest, waitSeconds = 0): Promise<Job | JobAccepted> {
  return client.submit(job, { idempotencyKey: `demo-${key}`, ...(waitSeconds ? { waitSeconds } : {}) });
}

/**
 * One demo customer's data, made through the API as a user would: money and services, substrates and
 * their relationships, jobs that end in each state, a batch, schedules, a webhook and an API key. Every step
 * is idempotent (creates answer with the existing resource, jobs carry Idempotency-Keys, lists are checked
 * first), so running the seed twice leaves the same data.
 */
export async function seedCustomer(baseUrl: string, customer: DemoCustomer, password: string, webhookUrl: string): Promise<SeededCustomer> {
  const client = await signIn(baseUrl, customer, password);
  const me = await unwrap(client.api.GET('/auth/me'));

  // Money first: enabling seal and upgrading compute are refused without a balance to cover them.
  const balance = await unwrap(client.api.GET('/billing/balance'));
  if (balance.balance_usd_cents < 5_000) await unwrap(client.api.POST('/billing/deposits', { body: { amount_usd_cents: 10_000 } }));
  await unwrap(
    client.api.PUT('/services/{service_type}', {
      params: { path: { service_type: 'compute' } },
      body: { tier: customer.tier, enabled: true },
    }),
  );
  await unwrap(
    client.api.PUT('/services/{service_type}', { params: { path: { service_type: 'seal' } }, body: { tier: 'starter', enabled: true } }),
  );

  const product = await unwrap(
    client.api.POST('/substrates', {
      body: { expression_type: 'expression', expression: 'x * y', metadata: { name: 'product', demo: true } },
    }),
  );
  const ratio = await unwrap(
    client.api.POST('/substrates', {
      body: { expression_type: 'expression', expression: 'x / y', metadata: { name: 'ratio', demo: true } },
    }),
  );
  const answer = await unwrap(
    client.api.POST('/substrates', { body: { expression_type: 'constant', value: 42, metadata: { name: 'answer', demo: true } } }),
  );
  await unwrap(
    client.api.POST('/relationships', {
      body: { source_id: ratio.substrate_id, target_id: product.substrate_id, type: 'DEPENDENCY', metadata: { demo: true } },
    }),
  );
  await unwrap(
    client.api.POST('/relationships', {
      body: { source_id: product.substrate_id, target_id: answer.substrate_id, type: 'REFERENCE', metadata: { demo: true } },
    }),
  );

  const invoke = (x: number, y: number, substrate = product.substrate_id) => ({
    type: 'invoke' as const,
    payload: { substrate_id: substrate, parameters: { x, y } },
  });
  const completed = await once(client, 'completed', invoke(6, 7), 30);
  const divided = await once(client, 'divide', { type: 'divide', payload: { substrate_id: answer.substrate_id } }, 30);
  // Integer division by zero fails in CEL: a job that ends `failed`, with its error.
  const failed = await once(client, 'failed', { ...invoke(1, 0, ratio.substrate_id), attempts: 1 }, 30);
  const delayed = await once(client, 'delayed', { ...invoke(2, 3), delay_ms: 24 * 3_600_000 });
  const toCancel = await once(client, 'cancelled', { ...invoke(4, 5), delay_ms: 24 * 3_600_000 });
  const cancelled = await cancelUnlessFinal(client, toCancel.id);

  const invocations: Array<{ substrate_id: string; parameters: Record<string, unknown> }> = Array.from({ length: 200 }, (_, i) => ({
    substrate_id: product.substrate_id,
    parameters: { x: i, y: 3 },
  }));
  // Two items that fail alone, so the batch view shows failures next to results.
  invocations[13] = { substrate_id: ratio.substrate_id, parameters: { x: 1, y: 0 } };
  invocations[144] = { substrate_id: product.substrate_id, parameters: { x: 1 } };
  const batch = await unwrap(
    client.api.POST('/batches', { body: { invocations }, params: { header: { 'idempotency-key': 'demo-batch' } } }),
  );

  const schedules = [
    { name: 'demo-hourly-product', cron: '0 * * * *', job: invoke(12, 12) },
    {
      name: 'demo-every-15-minutes',
      every_ms: 15 * 60_000,
      job: { type: 'divide' as const, payload: { substrate_id: answer.substrate_id } },
    },
    { name: 'demo-paused-nightly', cron: '30 2 * * *', tz: 'Europe/Paris', job: invoke(1, 1) },
  ];
  for (const schedule of schedules) await unwrap(client.api.POST('/schedules', { body: schedule }));
  await unwrap(client.api.POST('/schedules/{name}/pause', { params: { path: { name: 'demo-paused-nightly' } } }));

  const webhook = await ensureWebhook(client, webhookUrl);
  const keys = await unwrap(client.api.GET('/api-keys'));
  if (!keys.items.some((key) => key.name === 'demo' && key.revoked_at === null))
    await unwrap(client.api.POST('/api-keys', { body: { name: 'demo', service_type: 'compute' } }));

  return {
    email: customer.email,
    customerId: me.customer_id,
    substrates: [product.substrate_id, ratio.substrate_id, answer.substrate_id],
    jobs: { completed: completed.id, divide: divided.id, failed: failed.id, delayed: delayed.id, cancelled: cancelled.id },
    batchId: batch.id,
    schedules: schedules.map((schedule) => schedule.name),
    webhook,
  };
}

async function cancelUnlessFinal(client: ChrysalisClient, id: string): Promise<Job> {
  const job = await client.getJob(id);
  return job.state === 'delayed' || job.state === 'queued' ? client.cancel(id) : job;
}

/** A webhook to a loopback URL, if the instance allows private targets (WEBHOOK_ALLOW_PRIVATE); never another host. */
async function ensureWebhook(client: ChrysalisClient, url: string): Promise<SeededCustomer['webhook']> {
  const existing = await unwrap(client.api.GET('/webhooks'));
  if (existing.items.some((webhook) => webhook.url === url)) return 'existing';
  const created = await client.api.POST('/webhooks', { body: { url, events: ['job.completed', 'job.failed', 'batch.completed'] } });
  if (created.response.ok) return 'created';
  // 422 (or 400) naming body.url: the instance refuses private targets, as it should by default.
  if (created.response.status === 422 || created.response.status === 400) return 'refused by the instance';
  throw ChrysalisProblem.from(created.response, created.error);
}
