import { SingleBar, Presets } from 'cli-progress';
import fs from 'node:fs';
import type { ChrysalisClient } from '../client.js';
import type { BatchInvocation } from '../types.js';
import { UsageError, type Output } from './output.js';

/** Failed items the human summary lists (the JSON summary lists up to `maxFailedItems`). */
const listedFailures = 20;

/** NDJSON invocations (`{"substrate_id": "0x…", "parameters": {…}}` per line); blank lines are skipped. */
export function readInvocations(file: string): { invocations: BatchInvocation[]; lines: number[] } {
  const invocations: BatchInvocation[] = [];
  const lines: number[] = [];
  const text = fs.readFileSync(file, 'utf8');
  text.split('\n').forEach((raw, index) => {
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw new UsageError(`${file}:${index + 1}: not valid JSON`);
    }
    const item = value as Partial<BatchInvocation> | null;
    if (typeof item !== 'object' || item === null || typeof item.substrate_id !== 'string') {
      throw new UsageError(`${file}:${index + 1}: expected {"substrate_id": "0x…", "parameters": {…}}`);
    }
    invocations.push(item as BatchInvocation);
    lines.push(index + 1);
  });
  if (invocations.length === 0) throw new UsageError(`${file}: no invocations`);
  return { invocations, lines };
}

/**
 * `chrysalis batch FILE.ndjson`: submits the lines as batches, shows a progress bar on stderr (a line every
 * half second when stderr is not a terminal, so logs and CI show it too) and ends with a summary that names
 * the failed lines. Exit code 1 when any item failed.
 */
export async function batchCommand(client: ChrysalisClient, file: string, options: { progress: boolean }, out: Output): Promise<number> {
  const { invocations, lines } = readInvocations(file);
  const bar = options.progress
    ? new SingleBar(
        {
          format: 'batch |{bar}| {percentage}% | {value}/{total} done | {failed} failed | eta {eta_formatted}',
          stream: process.stderr,
          noTTYOutput: true,
          notTTYSchedule: 500,
          hideCursor: true,
        },
        Presets.shades_classic,
      )
    : null;
  bar?.start(invocations.length, 0, { failed: 0 });
  let outcome;
  try {
    outcome = await client.batch(invocations, {
      maxFailedItems: 1000,
      onProgress: (progress) => bar?.update(progress.completed + progress.failed, { failed: progress.failed }),
    });
  } finally {
    bar?.stop();
  }
  const failedItems = outcome.failedItems.map((item) => ({ line: lines[item.index], ...item }));
  out.result(
    {
      batches: outcome.batches.map((batch) => batch.id),
      total: outcome.total,
      completed: outcome.completed,
      failed: outcome.failed,
      failed_items: failedItems,
    },
    (summary) => {
      const head = `${summary.total} items in ${summary.batches.length} batch${summary.batches.length === 1 ? '' : 'es'} (${summary.batches.join(', ')}): ${summary.completed} completed, ${summary.failed} failed`;
      const listed = failedItems.slice(0, listedFailures).map((item) => `  line ${item.line}: ${item.substrate_id}: ${item.error}`);
      const more = summary.failed > listed.length ? [`  … and ${summary.failed - listed.length} more failed`] : [];
      return [head, ...listed, ...more].join('\n');
    },
  );
  return outcome.failed > 0 ? 1 : 0;
}
