import { describe, expect, it, onTestFailed } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { FaultStack } from './harness/fault-stack.js';
import { SteadyStream } from './harness/steady-stream.js';
import { report, tally } from './harness/tally.js';

/**
 * Chrysalis on a 3-master Redis Cluster with one replica per master (6 redis-servers, no persistence,
 * `cluster-node-timeout` 1500 ms), an API and a worker process with REDIS_CLUSTER_NODES, a steady stream
 * of submits throughout. One master goes away mid-run and its replica takes over its slots:
 *
 * - killed (SIGKILL): the replica promotes itself once the other masters have marked the master failed
 *   (≈ 2 × node timeout). Replication is asynchronous, so writes the master acknowledged but had not yet
 *   sent to its replica are gone: an enqueue (the job is missing from BullMQ), a move to active or to
 *   completed (the job is back where it was before). PostgreSQL is the record, so nothing the user was
 *   promised is lost: the sweeper enqueues accepted, unfinished rows that BullMQ no longer holds again under
 *   their id (after its 10 s grace), a job that reappears in wait or active runs again, and its second run
 *   writes nothing (a final row is never overwritten). That is what this asserts: every accepted job ends
 *   completed with its result written once.
 * - `CLUSTER FAILOVER` on the replica: a coordinated promotion (the master stops taking writes until its
 *   replica has caught up), so nothing is lost even in Redis; the clients only follow the MOVED redirections.
 */
const readyWithinMs = 30_000;

async function runFailoverScenario(
  name: string,
  fault: (stack: FaultStack, victim: number, replica: number) => Promise<void>,
): Promise<void> {
  const stack = await FaultStack.start({ cluster: { masters: 3, replicas: 1, nodeTimeoutMs: 1500 } });
  onTestFailed(() => console.log(stack.logs()));
  let stream: SteadyStream | null = null;
  try {
    const substrateId = await stack.substrate({ expression_type: 'expression', expression: 'x * 3' });
    const worker = await stack.startWorker();
    await waitFor(async () => (await stack.request('GET', '/api/v1/ready')).status === 200, 30_000, 200);
    stream = new SteadyStream(stack, substrateId);
    const completedCount = async () =>
      (await stack.sql<{ n: number }>(`select count(*)::int as n from jobs where state = 'completed'`))[0]!.n;
    // Mid-run: a good number done, more queued and active on every master.
    await waitFor(async () => (await completedCount()) >= 40, 60_000, 100);

    // The victim serves invoke shards (16 shards land on every master of a 3-master cluster) and the worker
    // heartbeats /ready reads: a client that keeps asking the demoted node for them keeps /ready red.
    const masters = await stack.cluster.masters();
    expect(masters).toHaveLength(3);
    const victim = await stack.cluster.masterOfSlot(await stack.cluster.keySlot('{workers}'));
    expect(masters).toContain(victim);
    const replica = await stack.cluster.replicaOf(victim);
    const acceptedBefore = stream.accepted.length;
    const faultAt = Date.now();
    await fault(stack, victim, replica);
    await stack.cluster.waitUntilMaster(replica, readyWithinMs);
    const promotedSeconds = (Date.now() - faultAt) / 1000;
    // A failure names the check /ready last reported red.
    await waitFor(
      async () => {
        const ready = await stack.request('GET', '/api/v1/ready');
        if (ready.status !== 200) throw new Error(`/ready ${ready.status}: ${ready.text}`);
        return true;
      },
      readyWithinMs,
      100,
    );
    const readySeconds = (Date.now() - faultAt) / 1000;
    // Work goes on: jobs submitted after the promotion complete (the API and worker were not restarted).
    const sentAtRecovery = stream.sent;
    await waitFor(
      async () =>
        (
          await stack.sql<{ n: number }>(
            `select count(*)::int as n from jobs where state = 'completed' and (payload -> 'parameters' ->> 'x')::int >= $1`,
            [sentAtRecovery],
          )
        )[0]!.n >= 20,
      60_000,
      100,
    );
    const workingSeconds = (Date.now() - faultAt) / 1000;
    await stream.stop();
    const acceptedDuringFault = stream.accepted.length - acceptedBefore;

    await stack.waitUntilFinal(stream.accepted, 120_000);
    const counts = await tally(stack, stream.accepted, (row) => 3 * (row.payload as { parameters: { x: number } }).parameters.x);
    report(name, counts, {
      'accepted after the fault': acceptedDuringFault,
      refused: JSON.stringify(stream.refused),
      'replica master after s': promotedSeconds.toFixed(1),
      'ready after s': readySeconds.toFixed(1),
      'new jobs completing after s': workingSeconds.toFixed(1),
    });
    expect(worker.alive).toBe(true);
    expect(stack.api.alive).toBe(true);
    expect(readySeconds * 1000).toBeLessThan(readyWithinMs);
    expect(counts).toMatchObject({
      accepted: stream.accepted.length,
      completed: stream.accepted.length,
      duplicates: 0,
      lost: 0,
      wrongResults: 0,
    });
  } finally {
    await stream?.stop();
    await stack.close();
  }
}

describe('Redis Cluster failover under a steady stream of jobs', () => {
  it('a master SIGKILLed: its replica takes over, /ready is green within 30 s, every accepted job completes once', async () => {
    await runFailoverScenario('cluster master killed', async (stack, victim) => {
      await stack.cluster.kill(victim);
    });
  });

  it('CLUSTER FAILOVER on a replica: /ready is green within 30 s, every accepted job completes once', async () => {
    await runFailoverScenario('cluster manual failover', async (stack, _victim, replica) => {
      await stack.cluster.failover(replica);
    });
  });
});
