/** The attack on webhook delivery: endpoints that accept a connection and never answer. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSubstrate } from './customers.js';
import { call } from './http.js';
import { emptyOutcome, salt, tallyJobs, untilEnded, type Attack } from './attack.js';

/** Loopback servers that accept every connection and never answer. */
async function hangingServers(count: number): Promise<{ urls: string[]; close(): Promise<void> }> {
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = http.createServer(() => undefined);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return server;
    }),
  );
  return {
    urls: servers.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`),
    async close() {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    },
  };
}

export const hangingWebhooks: Attack = {
  name: 'hanging-webhooks',
  description: '50 webhook endpoints that never answer, every job of the attacker delivered to each',
  // Once the attacker's jobs have completed and their deliveries hang.
  probeAfterMs: 6000,
  async run(ctx) {
    const outcome = emptyOutcome();
    const hanging = await hangingServers(ctx.sizes.hangingEndpoints);
    outcome.close = () => hanging.close();
    const webhookIds: string[] = [];
    for (const url of hanging.urls) {
      const answer = await call(ctx.api, 'POST', '/webhooks', {
        token: ctx.attacker.accessToken,
        body: { url, events: ['job.completed', 'job.failed', 'batch.completed'] },
      });
      outcome.requests.add(answer);
      if (answer.body?.id) webhookIds.push(answer.body.id as string);
    }
    const substrateId = await createSubstrate(ctx.api, ctx.attacker, 'x + 1');
    for (let i = 0; i < ctx.sizes.webhookJobs; i++) {
      const answer = await call(ctx.api, 'POST', `/substrates/${substrateId}/invoke`, {
        token: ctx.attacker.key,
        body: { parameters: { x: i, n: salt() } },
      });
      outcome.requests.add(answer);
      if (answer.body?.id) outcome.leftovers.jobIds.push(answer.body.id as string);
    }
    await untilEnded(ctx);
    await tallyJobs(ctx.api, ctx.attacker, outcome.leftovers.jobIds, outcome);
    // What the platform recorded for one of the hanging endpoints.
    const deliveries = webhookIds[0]
      ? await call(ctx.api, 'GET', `/webhooks/${webhookIds[0]}/deliveries?limit=100`, { token: ctx.attacker.accessToken })
      : null;
    const items = (deliveries?.body?.items ?? []) as Array<{
      state: string;
      attempts: Array<{ error?: string | null; status?: number | null }>;
    }>;
    outcome.notes.first_endpoint_deliveries = items.length;
    outcome.notes.first_endpoint_attempts = items.reduce((sum, item) => sum + (item.attempts?.length ?? 0), 0);
    outcome.notes.first_endpoint_example = JSON.stringify(items[0]?.attempts?.[0] ?? null).slice(0, 160);
    outcome.notes.endpoints = webhookIds.length;
    outcome.notes.deliveries_owed = webhookIds.length * ctx.sizes.webhookJobs;
    return outcome;
  },
};
