import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * The floor plan (README "Architecture") is kept by lint: each folder may import only the folders below it.
 * These lint made-up files in place, as `npm run lint` would lint them there.
 */
const eslint = new ESLint();

async function importErrors(filePath: string, from: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import { x } from '${from}';\nexport const y = x;\n`, { filePath });
  return (result?.messages ?? []).filter((message) => message.ruleId === 'no-restricted-imports').map((message) => message.message);
}

describe('import rules', () => {
  it.each([
    ['api/x.ts', '../workers/queues.js', 'api/ never imports workers/'],
    ['api/routes/x.routes.ts', '../../workers/run-workers.js', 'api/ never imports workers/'],
    ['workers/x.ts', '../api/deps.js', 'workers/ never imports api/'],
    ['workers/webhooks/x.ts', '../../api/auth/credentials.js', 'workers/ never imports api/'],
    ['lib/x.ts', '../ops/local-services.js', 'lib/ imports nothing of ours but config.ts'],
    ['lib/metrics/x.ts', '../../db/orm.js', 'lib/ imports nothing of ours but config.ts'],
    ['api/x.ts', '../ops/entry-point.js', 'nothing outside ops/ and tests/ imports ops/'],
    ['queue/x.ts', '../workers/processor.js', 'queue/ is below workers/ and api/'],
    ['db/x.ts', '../queue/queues.js', 'db/ imports lib/ only'],
    ['db/x.ts', '../jobs/registry.js', 'db/ imports lib/ only'],
    ['jobs/x/x.job.ts', '../../queue/submit-job.js', 'jobs/ imports db/ and lib/ only'],
    ['jobs/x/x.job.ts', '../../db/orm.js', 'jobs/ opens no connection'],
    ['jobs/x/x.job.ts', '../../lib/redis.js', 'jobs/ opens no connection'],
    ['jobs/x/x.task.ts', '../../db/repositories/substrates.js', 'a task file is a pure entry module'],
    ['config.ts', './lib/logger.js', 'config.ts imports nothing of ours'],
  ])('refuses %s importing %s (%s)', async (file, from) => {
    expect(await importErrors(file, from)).toHaveLength(1);
  });

  it.each([
    ['api/x.ts', '../queue/submit-job.js'],
    ['api/routes/x.routes.ts', '../../db/jobs/find-jobs.js'],
    ['workers/x.ts', '../queue/queues.js'],
    ['workers/x.ts', '../jobs/registry.js'],
    ['queue/x.ts', '../jobs/registry.js'],
    ['jobs/x/x.job.ts', '../../db/repositories/substrates.js'],
    ['jobs/x/x.job.ts', '../../lib/metrics/catalog.js'],
    ['jobs/x/x.task.ts', '../invoke/cel-environment.js'],
    ['db/x.ts', '../lib/crypto.js'],
    ['lib/x.ts', '../config.js'],
    ['ops/x.ts', '../workers/run-workers.js'],
    ['tests/x/x.test.ts', '../../workers/run-workers.js'],
  ])('lets %s import %s', async (file, from) => {
    expect(await importErrors(file, from)).toEqual([]);
  });
});

describe('Redis subscriptions', () => {
  async function syntaxErrors(filePath: string, code: string): Promise<string[]> {
    const [result] = await eslint.lintText(code, { filePath });
    return (result?.messages ?? []).filter((message) => message.ruleId === 'no-restricted-syntax').map((message) => message.message);
  }

  it.each([
    ['api/x.ts', "export const listen = (subscriber: { subscribe(c: string): void }) => subscriber.subscribe('news');\n"],
    ['workers/x.ts', "export const listen = (redis: { psubscribe(c: string): void }) => redis.psubscribe('news:*');\n"],
  ])('refuses %s subscribing a client directly (no resubscribe after a reconnect)', async (file, code) => {
    expect(await syntaxErrors(file, code)).toEqual([expect.stringContaining('subscribe(client, ...channels) (lib/redis.ts)')]);
  });

  it("lets the job waiter's own subscribe through, and still refuses eval there", async () => {
    const code = "export const follow = (deps: { waiter: { subscribe(id: string): void } }) => deps.waiter.subscribe('job');\n";
    expect(await syntaxErrors('api/x.ts', code)).toEqual([]);
    expect(await syntaxErrors('api/x.ts', "export const run = () => eval('1');\n")).toEqual(['Never eval.']);
  });
});
