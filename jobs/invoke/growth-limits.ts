import type { ASTNode } from '@marcbachmann/cel-js';
import { operandNodes } from './int-literal-range.js';

/**
 * The most one string, list or bytes value may hold while an expression runs. cel-js bounds an expression's size
 * but not its values: `[s].map(a, a+a+…+a)` chained six times makes a 167 MB string from a 10-character
 * parameter in milliseconds. A string that big, once laid out flat (by `join`, `contains`, a result's JSON),
 * is one allocation past the evaluation thread's heap limit, and V8 answers that by aborting the whole worker
 * process, not only the thread. Bounded here, every step stays small beside that limit and a runaway
 * expression fails alone with a clear error.
 */
export const growthLimits = {
  /** Characters of one string (UTF-16 code units). */
  stringChars: 4 * 1024 * 1024,
  /** Items of one list. */
  listItems: 1024 * 1024,
  /** Bytes of one bytes value. */
  bytes: 4 * 1024 * 1024,
} as const;

/** The size growthLimits counts of a value, and its limit; null for a value no operation here makes bigger. */
function measure(value: unknown): { size: number; limit: number; unit: string } | null {
  if (typeof value === 'string') return { size: value.length, limit: growthLimits.stringChars, unit: 'characters' };
  if (Array.isArray(value)) return { size: value.length, limit: growthLimits.listItems, unit: 'items' };
  if (value instanceof Uint8Array) return { size: value.length, limit: growthLimits.bytes, unit: 'bytes' };
  return null;
}

function refuse(what: string, size: number, limit: number, unit: string): never {
  throw new RangeError(`${what} would hold ${size} ${unit}, over the limit of ${limit} for one value`);
}

/** `left + right`: refused before it is made when the two together are over their kind's limit. */
function checkConcatenation(left: unknown, right: unknown): void {
  const a = measure(left);
  const b = measure(right);
  if (a && b && a.unit === b.unit && a.size + b.size > a.limit) refuse('a concatenation', a.size + b.size, a.limit, a.unit);
}

/** `list.join()` / `list.join(separator)`: refused before the string is laid out when it would be over the limit. */
function checkJoin([list, separator]: unknown[]): void {
  if (!Array.isArray(list)) return;
  const between = typeof separator === 'string' ? separator.length : 0;
  let chars = Math.max(0, list.length - 1) * between;
  for (const item of list) chars += typeof item === 'string' ? item.length : 0;
  if (chars > growthLimits.stringChars) refuse('a join', chars, growthLimits.stringChars, 'characters');
}

/** What cel-js keeps on a node once it is type-checked: the function that applies its operator or call. */
type CheckedNode = ASTNode & { handle?: (...args: unknown[]) => unknown };

function guard(node: CheckedNode, check: (args: unknown[]) => void): void {
  const handle = node.handle;
  if (typeof handle !== 'function') return;
  node.handle = (...args: unknown[]) => {
    check(args);
    return handle(...args);
  };
}

/**
 * Bounds the values `program`'s operations make (growthLimits): wraps, on each `+` and `join` node, the handler
 * cel-js chose when it type-checked the expression, with a check of the operands before the operation runs.
 * Type-checks `program` first (as its first evaluation would); a program that does not check is left as it
 * is, and its evaluation fails as before.
 */
export function limitGrowth<Program extends { ast: ASTNode; check: () => { valid: boolean } }>(program: Program): Program {
  if (!program.check().valid) return program;
  const pending: ASTNode[] = [program.ast];
  for (let node = pending.pop(); node; node = pending.pop()) {
    if (node.op === '+') guard(node, ([left, right]) => checkConcatenation(left, right));
    else if (node.op === 'rcall' && Array.isArray(node.args) && node.args[0] === 'join')
      guard(node, ([receiverAndArgs]) => checkJoin(receiverAndArgs as unknown[]));
    pending.push(...operandNodes(node.args));
  }
  return program;
}
