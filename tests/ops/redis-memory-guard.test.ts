import { describe, expect, it } from 'vitest';
import { registerUser } from '../helpers/accounts.js';
import { httpClient } from '../helpers/http.js';
import { startTestApp } from '../helpers/test-app.js';
import { createExpressionSubstrate } from '../helpers/substrates.js';

describe('Redis memory guard', () => {
  it('refuses new work with 503 problem+json and Retry-After while Redis is above REDIS_MEMORY_GUARD, and still answers reads', async () => {
    // The shared test Redis has no maxmemory: the guard measures against the host's memory; a share this small is always passed.
    const app = await startTestApp({ REDIS_MEMORY_GUARD: '0.000001' });
    try {
      const request = httpClient(app.baseUrl);
      const user = await registerUser(request);
      const substrateId = await createExpressionSubstrate(request, user.accessToken, 'x * 2');
      await app.deps.memoryGuard.refresh();
      const refused = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
        token: user.accessToken,
        body: { parameters: { x: 1 } },
      });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(refused.headers.get('retry-after')).toBe('30');
      expect(refused.body).toMatchObject({ status: 503, reason: 'redis_memory_guard' });
      expect(refused.body.detail).toMatch(/REDIS_MEMORY_GUARD/);
      const job = await request('POST', '/api/v1/jobs', {
        token: user.accessToken,
        body: { type: 'invoke', payload: { substrate_id: substrateId, parameters: { x: 2 } } },
      });
      expect(job.status).toBe(503);
      expect((await app.sql('select count(*)::int as n from jobs'))[0]).toEqual({ n: 0 });
      expect((await request('GET', '/api/v1/jobs', { token: user.accessToken })).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('accepts work below the share (the default 0.8)', async () => {
    const app = await startTestApp();
    try {
      const request = httpClient(app.baseUrl);
      const user = await registerUser(request);
      const substrateId = await createExpressionSubstrate(request, user.accessToken, 'x * 2');
      await app.deps.memoryGuard.refresh();
      expect(app.deps.memoryGuard.overLimit()).toBeNull();
      const accepted = await request('POST', `/api/v1/substrates/${substrateId}/invoke`, {
        token: user.accessToken,
        body: { parameters: { x: 1 } },
      });
      expect(accepted.status).toBe(202);
    } finally {
      await app.close();
    }
  });
});
