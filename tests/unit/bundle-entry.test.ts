import { describe, expect, it } from 'vitest';
import { newBundleId, packBundleEntry, unpackBundleEntry, type BundleJob } from '../../queue/bundles.js';

const held: BundleJob = {
  name: 'invoke',
  data: {
    customerId: 'c-1',
    members: [
      { id: '0193a000-0000-7000-8000-000000000001', payload: { parameters: { x: 1 } }, cacheMissed: true },
      { id: '0193a000-0000-7000-8000-000000000002', payloadInRow: true, hasWebhookUrl: true },
      { id: '0193a000-0000-7000-8000-000000000003', payload: { parameters: { x: 3 } } },
    ],
    fairEntry: true,
  },
  opts: { jobId: newBundleId(), attempts: 3 },
};

describe('a bundle held whole in a fair-shared lane (packBundleEntry / unpackBundleEntry)', () => {
  it('keeps its name, attempts, members and their flags, and no payload (the worker reads them from the rows)', () => {
    const packed = packBundleEntry(held);
    expect(packed).not.toContain('parameters');
    expect(unpackBundleEntry(held.opts.jobId, 'c-1', packed)).toEqual({
      name: 'invoke',
      data: {
        customerId: 'c-1',
        members: [
          { id: '0193a000-0000-7000-8000-000000000001', payloadInRow: true, cacheMissed: true },
          { id: '0193a000-0000-7000-8000-000000000002', payloadInRow: true, hasWebhookUrl: true },
          { id: '0193a000-0000-7000-8000-000000000003', payloadInRow: true },
        ],
        fairEntry: true,
      },
      opts: { jobId: held.opts.jobId, attempts: 3 },
    });
  });

  it('answers null for an entry that is not one (no hints, a single job’s flags, JSON of another shape)', () => {
    for (const packed of [
      '',
      '!m',
      '{"cacheMissed":true}',
      '{"n":"invoke","a":"3","m":[]}',
      '{"n":1,"a":3,"m":[]}',
      '{"n":"invoke","a":3}',
      'not json',
    ])
      expect(unpackBundleEntry('bundle-x', 'c-1', packed), packed).toBeNull();
  });

  it('drops members that are not strings rather than carrying them to a worker', () => {
    const unpacked = unpackBundleEntry('bundle-x', 'c-1', '{"n":"invoke","a":3,"m":["id-1",7,null,{"id":"id-2"}]}');
    expect(unpacked?.data.members).toEqual([{ id: 'id-1', payloadInRow: true }]);
  });
});
