/** Prints the functions with the most self time in a V8 .cpuprofile: `tsx ops/bench/top-functions.ts FILE [N]`. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}

const [file, count = '25'] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file as string, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
const total = profile.samples.length;
const byFunction = new Map<string, number>();
for (const node of profile.nodes) {
  const where = node.callFrame.url.replace(/^.*\/(node_modules\/)?/, '');
  const key = `${node.callFrame.functionName || '(anonymous)'} ${where}:${node.callFrame.lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + node.hitCount);
}
for (const [name, hits] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(count))) {
  console.log(`${((hits / total) * 100).toFixed(1).padStart(5)}%  ${name}`);
}
