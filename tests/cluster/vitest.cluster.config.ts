import { defineConfig } from 'vitest/config';
import base from '../../vitest.config.js';

// global-setup starts a local 3-master Redis Cluster (redis-server and redis-cli from PATH) and every test app
// (tests/helpers/test-app.ts) and test-made client (tests/helpers/redis-target.ts) uses it.
process.env.TEST_REDIS_CLUSTER = '1';

/**
 * `npm run test:cluster` (issue 17): every API suite that uses Redis, on a local 3-master Redis Cluster instead of
 * one node — REDIS_CLUSTER_NODES, 16 shards per hot queue, keys spread over the masters. Left out: suites that
 * never reach the cluster (unit tests, file and import checks, the generated-client drift check, pricing,
 * OpenAPI examples), suites about one local redis-server (local-services, redis-eviction-policy, redis-subscribe, bench-peers),
 * tests/cluster (each file starts clusters of its own; `npm test` runs it), the browser suites, and the
 * fault and noisy suites (their own configs; the fault suite has cluster scenarios of its own).
 */
export default defineConfig({
  test: {
    ...base.test,
    include: [
      'tests/{admin,auth,billing,client,contract,db,events,fuzz,isolation,jobs,metering,openapi,ops,schedules,substrates,vault,webhooks}/**/*.test.ts',
    ],
    exclude: [
      ...(base.test?.exclude ?? []),
      'tests/billing/pricing.test.ts',
      'tests/client/schema-drift.test.ts',
      'tests/openapi/examples.test.ts',
      'tests/ops/{bench-peers,import-rules,local-services,ops-files,redis-eviction-policy,redis-subscribe,start-busy-port,table-owners}.test.ts',
    ],
  },
});
