/**
 * Runs before `npm start` (plain JavaScript, so it needs no build itself): builds dist/ with `npm run build`
 * when it is missing or older than any source it is built from, so a fresh clone, a `git pull` or an edit is
 * started as built JavaScript. `npm start` runs `node dist/ops/start.js`: the same processes as through tsx,
 * but without tsx's loader in the API, the worker and each of their pool threads (less memory, faster start).
 *
 * A rebuild starts from an empty dist/, so nothing compiled from a deleted source (a migration, say) survives.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stamp = path.join(root, 'dist', '.built');
/** What tsconfig.build.json compiles (and the build copies), and the settings that shape it. */
const sources = [
  'config.ts',
  'lib',
  'queue',
  'api',
  'workers',
  'jobs',
  'db',
  'ops',
  'tsconfig.json',
  'tsconfig.build.json',
  'package.json',
];
const skipped = new Set([path.join(root, 'ops', 'bench'), path.join(root, 'node_modules')]);

/** The newest modification time (ms) of the files under `entry`. */
function newest(entry) {
  if (skipped.has(entry)) return 0;
  const stats = statSync(entry, { throwIfNoEntry: false });
  if (!stats) return 0;
  if (!stats.isDirectory()) return stats.mtimeMs;
  let latest = 0;
  for (const name of readdirSync(entry)) latest = Math.max(latest, newest(path.join(entry, name)));
  return latest;
}

const builtAt = statSync(stamp, { throwIfNoEntry: false })?.mtimeMs ?? 0;
const changedAt = Math.max(...sources.map((source) => newest(path.join(root, source))));
if (builtAt === 0 || changedAt > builtAt) {
  process.stderr.write(`[chrysalis] ${builtAt === 0 ? 'no build yet' : 'sources changed since the last build'}: npm run build…\n`);
  const started = performance.now();
  rmSync(path.join(root, 'dist'), { recursive: true, force: true });
  const npm = process.env.npm_execpath
    ? [process.execPath, [process.env.npm_execpath, 'run', 'build', '--silent']]
    : ['npm', ['run', 'build', '--silent']];
  const build = spawnSync(npm[0], npm[1], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) {
    process.stderr.write('[chrysalis] the build failed; fix the errors above, then npm start again\n');
    process.exit(build.status ?? 1);
  }
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
  process.stderr.write(`[chrysalis] built in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}
