import { describe, expect, it } from 'vitest';
import { useTestApp } from '../helpers/suite.js';

const suite = useTestApp({ env: { SERVER_TIMING: 'true' }, users: 1 });

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
});
