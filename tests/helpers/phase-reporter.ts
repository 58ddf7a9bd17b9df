import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ReportedHookContext, Reporter, TestModule } from 'vitest/node';

/**
 * Where each test file's time goes, for finding what makes the suite slow (not part of `npm test`):
 *
 *   npx vitest run --reporter=default --reporter=./tests/helpers/phase-reporter.ts [files]
 *
 * Per file: prepare (runner set-up in its fork), collect (importing the file and everything it imports, then
 * running its describe callbacks), beforeAll and afterAll (wall time of those hooks, suites' own included, seen
 * from the main process: test apps, databases, workers), and the tests. Prints the 25 files with the most time
 * and the sums; PHASE_REPORT=<file> also writes every row as JSON.
 */
export default class PhaseReporter implements Reporter {
  private readonly hookStarts = new Map<string, number>();
  private readonly hookTotals = new Map<string, { beforeAll: number; afterAll: number }>();
  private readonly rows: Array<{ file: string; prepare: number; collect: number; beforeAll: number; afterAll: number; tests: number }> = [];

  onHookStart(hook: ReportedHookContext): void {
    if (hook.name === 'beforeAll' || hook.name === 'afterAll') this.hookStarts.set(`${hook.entity.id}:${hook.name}`, Date.now());
  }

  onHookEnd(hook: ReportedHookContext): void {
    if (hook.name !== 'beforeAll' && hook.name !== 'afterAll') return;
    const started = this.hookStarts.get(`${hook.entity.id}:${hook.name}`);
    if (started === undefined) return;
    const moduleId = hook.entity.type === 'module' ? hook.entity.moduleId : hook.entity.module.moduleId;
    const totals = this.hookTotals.get(moduleId) ?? { beforeAll: 0, afterAll: 0 };
    totals[hook.name] += Date.now() - started;
    this.hookTotals.set(moduleId, totals);
  }

  onTestModuleEnd(module: TestModule): void {
    const diagnostic = module.diagnostic();
    const hooks = this.hookTotals.get(module.moduleId) ?? { beforeAll: 0, afterAll: 0 };
    let tests = 0;
    for (const test of module.children.allTests()) tests += test.diagnostic()?.duration ?? 0;
    this.rows.push({
      file: path.relative(process.cwd(), module.moduleId),
      prepare: diagnostic.prepareDuration,
      collect: diagnostic.collectDuration,
      ...hooks,
      tests,
    });
  }

  onTestRunEnd(): void {
    const seconds = (ms: number) => (ms / 1000).toFixed(1).padStart(7);
    const total = (row: (typeof this.rows)[number]) => row.prepare + row.collect + row.beforeAll + row.afterAll + row.tests;
    const sorted = [...this.rows].sort((a, b) => total(b) - total(a));
    const sum = { prepare: 0, collect: 0, beforeAll: 0, afterAll: 0, tests: 0 };
    for (const row of sorted) for (const key of Object.keys(sum) as Array<keyof typeof sum>) sum[key] += row[key];
    const lines = [
      `${'prepare'.padStart(7)}${'collect'.padStart(8)}${'bAll'.padStart(8)}${'aAll'.padStart(8)}${'tests'.padStart(8)}  file (s)`,
    ];
    for (const row of sorted.slice(0, 25))
      lines.push(
        `${seconds(row.prepare)} ${seconds(row.collect)} ${seconds(row.beforeAll)} ${seconds(row.afterAll)} ${seconds(row.tests)}  ${row.file}`,
      );
    lines.push(
      `${seconds(sum.prepare)} ${seconds(sum.collect)} ${seconds(sum.beforeAll)} ${seconds(sum.afterAll)} ${seconds(sum.tests)}  sum of ${sorted.length} files`,
    );
    console.log(`\nTime per file by phase\n${lines.join('\n')}`);
    if (process.env.PHASE_REPORT) writeFileSync(process.env.PHASE_REPORT, JSON.stringify(sorted, null, 1));
  }
}
