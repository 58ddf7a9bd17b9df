import { ChrysalisProblem } from '../problem.js';
import { TimeoutError } from '../wait.js';

/** Where results go: JSON for scripts (`--json`), short lines for people. */
export class Output {
  constructor(readonly json: boolean) {}

  /** The result of a command: `value` as JSON with `--json`, else `human(value)`. */
  result<T>(value: T, human: (value: T) => string): void {
    process.stdout.write(this.json ? JSON.stringify(value) + '\n' : human(value) + '\n');
  }

  /** A note for people (stderr, so `--json` stdout stays parseable). */
  note(message: string): void {
    process.stderr.write(message + '\n');
  }

  /** Reports a failure on stderr and returns the exit code. */
  failure(error: unknown): number {
    if (error instanceof ChrysalisProblem) {
      if (this.json) process.stderr.write(JSON.stringify({ ...error.body, status: error.status }) + '\n');
      else {
        process.stderr.write(`error: ${error.title} (${error.status}): ${error.detail}\n`);
        for (const field of error.errors) process.stderr.write(`  ${field.field}: ${field.message}\n`);
        if (error.retryAfterSeconds !== null) process.stderr.write(`  retry after ${error.retryAfterSeconds} s\n`);
      }
      return 1;
    }
    const message = error instanceof TimeoutError ? error.message : describeNetworkError(error);
    process.stderr.write(this.json ? JSON.stringify({ error: message }) + '\n' : `error: ${message}\n`);
    return 1;
  }
}

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code === 'ECONNREFUSED') return `cannot reach the API (${cause.message}); is it running, and is --base-url right?`;
  return cause?.message ? `${error.message}: ${cause.message}` : error.message;
}

/** `key=value` pairs as an object; values that read as JSON (numbers, booleans, quoted strings) are parsed. */
export function parseParams(pairs: string[]): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--param ${pair}: expected name=value`);
    const raw = pair.slice(at + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // Not JSON: the text itself.
    }
    params[pair.slice(0, at)] = value;
  }
  return params;
}

/** A mistake in how the CLI was called (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseJsonOption(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${name}: not valid JSON (${(error as Error).message})`);
  }
}
