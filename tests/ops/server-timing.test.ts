import { describe, expect, it } from 'vitest';
import { createRedis } from '../../lib/redis.js';
import { stageMarksKey } from '../../lib/stage-marks.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';
import { useTestApp } from '../helpers/suite.js';

const suite = useTestApp({ env: { SERVER_TIMING: 'true' }, users: 1, workers: true });

/** The stage names and durations of a `Server-Timing` header. */
function stagesOf(header: string | null): Map<string, number> {
  const stages = new Map<string, number>();
  for (const part of (header ?? '').split(',')) {
    const match = /^\s*([\w-]+);dur=([\d.]+)$/.exec(part);
    if (match) stages.set(match[1]!, Number(match[2]));
  }
  return stages;
}

describe('SERVER_TIMING', () => {
  it("times an authenticated request's stages: auth, the limits, the database read, the route and the whole", async () => {
    const response = await suite.request('GET', '/api/v1/jobs/0190b6a2-0000-7000-8000-000000000000', {
      token: suite.users[0]!.accessToken,
    });
    expect(response.status).toBe(404);
    const stages = stagesOf(response.headers.get('server-timing'));
    for (const name of ['auth', 'limits', 'db', 'route', 'total']) expect(stages.has(name), name).toBe(true);
    const parts = [...stages].filter(([name]) => name !== 'total').reduce((sum, [, ms]) => sum + ms, 0);
    expect(parts).toBeLessThanOrEqual(stages.get('total')! + 0.01);
  });

  it('times a refused request up to its refusal, and a public route without the stages it skips', async () => {
    const refused = stagesOf((await suite.request('GET', '/api/v1/jobs', { token: 'sk_live_not-a-key' })).headers.get('server-timing'));
    expect(refused.has('total')).toBe(true);
    const health = stagesOf((await suite.request('GET', '/api/v1/health')).headers.get('server-timing'));
    expect([...health.keys()]).toContain('total');
    expect(health.has('auth')).toBe(false);
  });

  it("times a Prefer: wait invoke's stages and keeps its API and worker stage marks, in the order the job passed them", async () => {
    const token = suite.users[0]!.accessToken;
    const substrateId = await createExpressionSubstrate(suite.request, token, 'x * y');
    const response = await suite.request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
      token,
      headers: { prefer: 'wait=10' },
      body: { parameters: { x: 6, y: 7 } },
    });
    expect(response.status).toBe(200);
    const stages = stagesOf(response.headers.get('server-timing'));
    for (const name of ['auth', 'limits', 'cache', 'admission', 'insert', 'enqueue', 'wait', 'total'])
      expect(stages.has(name), name).toBe(true);
    const redis = createRedis(suite.app.config.redis);
    try {
      const key = stageMarksKey(suite.app.config.queuePrefix, response.body.id as string);
      let marks: Record<string, string> = {};
      for (let i = 0; i < 100 && Object.keys(marks).length < 5; i++) {
        marks = await redis.hgetall(key);
        if (Object.keys(marks).length < 5) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const at = (name: string) => Number(marks[name]);
      // The worker takes the job after it was stored and added, and the API hears of it after the evaluation.
      expect(at('picked')).toBeGreaterThan(0);
      expect(at('evaluated')).toBeGreaterThanOrEqual(at('picked'));
      expect(at('written')).toBeGreaterThanOrEqual(at('evaluated'));
      expect(at('noticed')).toBeGreaterThan(at('evaluated'));
      expect(at('enqueued')).toBeGreaterThan(0);
      expect(at('noticed')).toBeLessThanOrEqual(stages.get('total')! + 1);
    } finally {
      await redis.quit();
    }
  });
});
