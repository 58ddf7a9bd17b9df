import { describe, expect, it } from 'vitest';
import { preferredWaitMs } from '../../api/job-responses.js';

const waitOf = (prefer: string | string[] | undefined) => preferredWaitMs({ headers: { prefer } });

/** RFC 7240 `Prefer: wait=N` as a submit reads it (SPEC §5: N ≤ 30 s). */
describe('preferredWaitMs', () => {
  it('reads whole and fractional seconds, plain or quoted, among other preferences, capped at 30 s', () => {
    expect(waitOf('wait=5')).toBe(5000);
    expect(waitOf('WAIT=2.5')).toBe(2500);
    expect(waitOf('wait="3"')).toBe(3000);
    expect(waitOf('respond-async, wait=4')).toBe(4000);
    expect(waitOf('return=minimal; wait=1')).toBe(1000);
    expect(waitOf(['handling=lenient', 'wait=7'])).toBe(7000);
    expect(waitOf('wait=0')).toBe(0);
    expect(waitOf('wait=3600')).toBe(30_000);
  });

  it('ignores a wait it cannot read as seconds, rather than a prefix of it', () => {
    for (const prefer of [
      undefined,
      '',
      'wait',
      'wait=',
      'wait=abc',
      'wait=-1',
      'wait=1e9',
      'wait=0x10',
      'wait=5s',
      'wait=1.',
      'nowait=5',
      'wait="5',
    ])
      expect(waitOf(prefer), String(prefer)).toBeNull();
  });
});
