import { afterAll, describe, expect, inject, it } from 'vitest';
import { createPeerDatabase, type PeerDatabase } from '../../ops/bench/peers/peer-database.js';
import { peerSides } from '../../ops/bench/peers/peer-sides.js';
import { waitFor } from '../helpers/http.js';

// A smoke run of each side of `npm run bench -- --only=peers` (its worker process, its own database, bulk enqueue):
// a side that dropped, duplicated or miscomputed results would make every figure it prints meaningless.
const jobCount = 200;
const jobs = Array.from({ length: jobCount }, (_, x) => ({ expression: 'x * y', parameters: { x, y: 3 } }));
const sides = peerSides({ redisUrl: inject('redisUrl'), queuePrefix: `{peers-test-${process.pid}}` });
const databases: PeerDatabase[] = [];

afterAll(async () => {
  for (const database of databases) await database.drop();
});

describe('bench peers', () => {
  for (const [index, side] of sides.entries()) {
    it(`${side.name}: ${jobCount} jobs enqueued in bulk leave exactly their ${jobCount} result rows, each x * y`, async () => {
      const database = await createPeerDatabase(inject('adminDatabaseUrl'), `chrysalis_peers_test_${process.pid}_${index}`);
      databases.push(database);
      const running = await side.start(database);
      try {
        await running.enqueue(jobs);
        await waitFor(async () => (await database.resultCount()) >= jobCount, 20_000);
        const values = (await database.resultValues()).map(Number).sort((a, b) => a - b);
        expect(values).toEqual(jobs.map(({ parameters }) => parameters.x * parameters.y));
      } finally {
        await running.stop();
      }
    });
  }
});
