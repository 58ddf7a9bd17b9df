/**
 * Reads a V8 .cpuprofile: `tsx ops/bench/top-functions.ts FILE [N] [--by=function|package]`.
 * `function` (default) lists the functions with the most self time; `package` sums self time per
 * npm package (or per project folder, or `(gc)`/`(program)`/`(idle)`), which shows where a flat profile goes.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}

const args = process.argv.slice(2);
const by = args.find((arg) => arg.startsWith('--by='))?.slice('--by='.length) ?? 'function';
const [file, count = '25'] = args.filter((arg) => !arg.startsWith('--'));
const profile = JSON.parse(readFileSync(file as string, 'utf8')) as {
  nodes: ProfileNode[];
  samples: number[];
  startTime: number;
  endTime: number;
};
const total = profile.samples.length;
const msPerSample = (profile.endTime - profile.startTime) / 1000 / total;

function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (inModules) return inModules[1] as string;
  if (url.startsWith('node:')) return url.split('/')[0] as string;
  const project = /\/work\/[^/]+\/([^/]+)\//.exec(url);
  return project ? `project:${project[1]}` : url;
}

const totals = new Map<string, number>();
for (const node of profile.nodes) {
  const { functionName, url, lineNumber } = node.callFrame;
  const key =
    by === 'package'
      ? packageOf(url, functionName)
      : `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules\/)?/, '')}:${lineNumber + 1}`;
  totals.set(key, (totals.get(key) ?? 0) + node.hitCount);
}
for (const [name, hits] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, Number(count))) {
  console.log(`${((hits / total) * 100).toFixed(1).padStart(5)}% ${String(Math.round(hits * msPerSample)).padStart(7)} ms  ${name}`);
}
