/**
 * The `noisy` scenario of `npm run bench`: every attack of issue 15 at full size against the bench's
 * running API and worker, the victim measured throughout. Per attack: the victim's `Prefer: wait` p50
 * and p99 and `/health` p99 against the targets (p99 ≤ 1 s, p50 ≤ 100 ms, /health p99 ≤ 50 ms), and
 * whether anything that must never happen did.
 */
import type { ScenarioResult } from '../harness.js';
import { attacks } from './attacks.js';
import { printReports, type AttackReport, type NoisyPlatform } from './run.js';
import { NoisySession } from './session.js';
import type { NoisySizes } from './sizes.js';

export const noisyTargets = { waitP99Ms: 1000, waitP50Ms: 100, healthP99Ms: 50 } as const;

export interface NoisyAttackResult extends AttackReport {
  targets: { wait_p99: 'met' | 'unmet'; wait_p50: 'met' | 'unmet'; health_p99: 'met' | 'unmet'; never_happened: 'met' | 'unmet' };
}

export function judge(report: AttackReport): NoisyAttackResult {
  const mark = (ok: boolean) => (ok ? 'met' : 'unmet') as 'met' | 'unmet';
  return {
    ...report,
    targets: {
      wait_p99: mark(report.victim.calls > 0 && report.victim.p99_ms <= noisyTargets.waitP99Ms),
      wait_p50: mark(report.victim.calls > 0 && report.victim.p50_ms <= noisyTargets.waitP50Ms),
      health_p99: mark(report.health.probes > 0 && report.health.p99_ms <= noisyTargets.healthP99Ms),
      never_happened: mark(report.problems.length === 0),
    },
  };
}

export async function runNoisy(
  platform: NoisyPlatform,
  sizes: NoisySizes,
  print: (result: NoisyAttackResult) => void,
  only?: string[],
): Promise<ScenarioResult> {
  const unknown = (only ?? []).filter((name) => !attacks.some((attack) => attack.name === name));
  if (unknown.length > 0)
    throw new Error(`unknown noisy attack ${unknown.join(', ')}; known: ${attacks.map((attack) => attack.name).join(', ')}`);
  const session = await NoisySession.start(platform);
  const results: NoisyAttackResult[] = [];
  try {
    for (const attack of attacks.filter((a) => !only || only.includes(a.name))) {
      const result = judge(await session.run(attack, sizes));
      results.push(result);
      print(result);
    }
  } finally {
    await session.close();
  }
  printReports(results, (line) => process.stderr.write(`[bench] ${line}\n`));
  const met = results.filter((r) => Object.values(r.targets).every((t) => t === 'met')).length;
  return {
    scenario: 'noisy',
    n: results.length,
    unit: 'attacks with every target met',
    platform: met,
    baseline: null,
    ratio: null,
    target: 'per attack: wait p99 <= 1 s, p50 <= 100 ms, /health p99 <= 50 ms, victim unharmed',
    met: met === results.length,
    details: {
      scale: sizes.scale,
      window_seconds: sizes.windowSeconds,
      per_attack: Object.fromEntries(
        results.map((r) => [
          r.attack,
          {
            wait_p50_ms: r.victim.p50_ms,
            wait_p99_ms: r.victim.p99_ms,
            health_p99_ms: r.health.p99_ms,
            targets: r.targets,
            problems: r.problems,
          },
        ]),
      ),
    },
  };
}
