import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrm, type Orm } from '../../db/orm.js';
import { recordEndpointOutcome, type BreakerPolicy } from '../../db/repositories/webhook-endpoints.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

/** The breaker's counter under concurrent deliveries to one endpoint: every outcome counts, none is lost. */
let app: TestApp;
let orm: Orm;
const concurrent = 20;
// High enough that the run of failures neither disables the endpoint nor stops counting.
const policy: BreakerPolicy = { failuresToOpen: 5, cooldownMs: 60_000, failuresToDisable: 1_000, disableAfterMs: 86_400_000 };

beforeAll(async () => {
  app = await startTestApp();
  orm = await createOrm(app.config.databaseUrl, { poolMax: concurrent + 2 });
});

afterAll(async () => {
  await orm?.close();
  await app?.close();
});

async function newEndpoint(): Promise<string> {
  const id = randomUUID();
  await app.sql(
    `insert into webhook_endpoints (id, customer_id, url, events, encrypted_secret) values ($1, $2, 'http://127.0.0.1:9/h', '{}', 'x')`,
    [id, randomUUID()],
  );
  return id;
}

async function endpointRow(id: string) {
  const [row] = await app.sql<{ consecutive_failures: number; breaker_opens: number; xmin: string }>(
    'select consecutive_failures, breaker_opens, xmin::text from webhook_endpoints where id = $1',
    [id],
  );
  return row!;
}

describe('recordEndpointOutcome', () => {
  it(`counts ${concurrent} concurrent failures as ${concurrent}`, async () => {
    const id = await newEndpoint();
    const outcomes = await Promise.all(Array.from({ length: concurrent }, () => recordEndpointOutcome(orm.em.fork(), id, false, policy)));
    expect((await endpointRow(id)).consecutive_failures).toBe(concurrent);
    // Each caller saw its own step of the run: 1, 2, … N, once each.
    expect(outcomes.map((outcome) => outcome?.consecutiveFailures).sort((a, b) => a! - b!)).toEqual(
      Array.from({ length: concurrent }, (_, i) => i + 1),
    );
    // The breaker opened once per failure from the fifth on.
    expect((await endpointRow(id)).breaker_opens).toBe(concurrent - policy.failuresToOpen + 1);
  });

  it('does not write on a success while the counter is already 0, and clears it after failures', async () => {
    const id = await newEndpoint();
    const before = await endpointRow(id);
    expect(await recordEndpointOutcome(orm.em.fork(), id, true, policy)).toMatchObject({ consecutiveFailures: 0, disabled: false });
    expect((await endpointRow(id)).xmin).toBe(before.xmin);

    await recordEndpointOutcome(orm.em.fork(), id, false, policy);
    expect((await endpointRow(id)).consecutive_failures).toBe(1);
    expect(await recordEndpointOutcome(orm.em.fork(), id, true, policy)).toMatchObject({ consecutiveFailures: 0, breakerOpenUntil: null });
    expect(await endpointRow(id)).toMatchObject({ consecutive_failures: 0, breaker_opens: 0 });
  });

  it('answers null for an endpoint that is gone', async () => {
    expect(await recordEndpointOutcome(orm.em.fork(), randomUUID(), false, policy)).toBeNull();
    expect(await recordEndpointOutcome(orm.em.fork(), randomUUID(), true, policy)).toBeNull();
  });

  it('reports the failure that disables the endpoint once', async () => {
    const id = await newEndpoint();
    const strict = { ...policy, failuresToDisable: 3 };
    const disabled = [];
    for (let i = 0; i < 5; i++) disabled.push((await recordEndpointOutcome(orm.em.fork(), id, false, strict))?.disabled);
    expect(disabled).toEqual([false, false, true, false, false]);
  });
});
