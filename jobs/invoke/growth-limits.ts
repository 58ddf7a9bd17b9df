import type { ASTNode } from '@marcbachmann/cel-js';
import { operandNodes } from './int-literal-range.js';

/**
 * The most one string, list or bytes value may hold while an expression runs. cel-js bounds an expression's size
 * but not its values: `[s].map(a, a+a+…+a)` chained six times makes a 167 MB string from a 10-character
 * parameter in milliseconds, and `bytes(…).hex()` doubles a value each time. A value that big, made in one
 * allocation (a string laid out flat, a list's backing store), lands past the evaluation thread's heap limit, and
 * V8 answers that by aborting the whole worker process, not only the thread. Bounded here, every single
 * allocation stays small beside that limit, so a runaway expression fails alone with a clear error (and one
 * that makes many such values reaches the heap limit step by step, which stops only its thread).
 */
export const growthLimits = {
  /** Characters of one string (UTF-16 code units). */
  stringChars: 4 * 1024 * 1024,
  /** Items of one list. */
  listItems: 1024 * 1024,
  /** Bytes of one bytes value. */
  bytes: 4 * 1024 * 1024,
  /** Bytes `bytes.json()` parses: JSON.parse builds its whole result in one step. */
  jsonBytes: 1024 * 1024,
  /**
   * Characters of a `matches` pattern. V8 compiles a regular expression in one step no time limit can stop: a
   * computed pattern of 1.18 M characters held its thread (and 230 MB) for 25 s after the job had failed at 5 s,
   * and the pool's replacement threads piled up. 4,096 characters, an expression's own length, compile in ~3 ms.
   */
  patternChars: 4096,
  /**
   * Bytes one evaluation may make outside the thread's heap in all: bytes values, and the strings Node makes of
   * them (`hex()`, `base64()`, `string(bytes)`). Each alone is bounded above, but `l.map(i, b.hex())` makes a 4 Mi-
   * character string per item, and the heap limit never sees them: a thousand would be 4 GB of worker memory (eight hex() rounds of one value took a worker from 176 to 655 MB).
   */
  evaluationTotal: 64 * 1024 * 1024,
} as const;

/** What the checked operations of the evaluation under way have made so far (one evaluation at a time per thread). */
let madeThisEvaluation = 0;

/** Starts the count of `growthLimits.evaluationTotal` over: call before each evaluation. */
export function startEvaluation(): void {
  madeThisEvaluation = 0;
}

type Unit = 'characters' | 'items' | 'bytes';
const limitOf: Record<Unit, number> = { characters: growthLimits.stringChars, items: growthLimits.listItems, bytes: growthLimits.bytes };

function refuse(what: string, size: number, unit: Unit, limit: number): never {
  throw new RangeError(`${what} would hold ${size} ${unit}, over the limit of ${limit} for one value`);
}

/**
 * Checks a value about to be made against its kind's limit and, when it lives outside the thread's heap (bytes,
 * and the strings Node makes of them), against what the evaluation may still make there.
 */
function within(what: string, size: number, unit: Unit, options: { limit?: number; offHeap?: boolean } = {}): void {
  const limit = options.limit ?? limitOf[unit];
  if (size > limit) refuse(what, size, unit, limit);
  if (!options.offHeap) return;
  madeThisEvaluation += size;
  if (madeThisEvaluation > growthLimits.evaluationTotal)
    throw new RangeError(
      `the expression made more than ${growthLimits.evaluationTotal} bytes outside the thread's heap in all (${what} is one too many)`,
    );
}

/** The size growthLimits counts of a value, in its unit; null for a value no operation here makes bigger. */
function measure(value: unknown): { size: number; unit: Unit } | null {
  if (typeof value === 'string') return { size: value.length, unit: 'characters' };
  if (Array.isArray(value)) return { size: value.length, unit: 'items' };
  if (value instanceof Uint8Array) return { size: value.length, unit: 'bytes' };
  return null;
}

/** `left + right`: strings, lists or bytes whose sum would be over the limit. */
function checkConcatenation(left: unknown, right: unknown): void {
  const a = measure(left);
  const b = measure(right);
  if (a && b && a.unit === b.unit) within('a concatenation', a.size + b.size, a.unit, { offHeap: a.unit === 'bytes' });
}

/** How many parts `text.split(separator)` makes, counted no further than just past the list limit. */
function partsOf(text: string, separator: string): number {
  if (separator === '') return text.length;
  let parts = 1;
  for (let at = text.indexOf(separator); at !== -1 && parts <= growthLimits.listItems; at = text.indexOf(separator, at + separator.length))
    parts++;
  return parts;
}

/**
 * Checks of the functions whose result can be bigger than their operands, on the evaluated operands (a method's
 * receiver first) before the function runs. The rest (`lowerAscii`, `substring`, `string(bytes)`, the macros…)
 * make nothing bigger than what they are given.
 */
const functionChecks: Record<string, (operands: unknown[]) => void> = {
  join([list, separator]) {
    if (!Array.isArray(list)) return;
    let chars = Math.max(0, list.length - 1) * (typeof separator === 'string' ? separator.length : 0);
    for (const item of list) chars += typeof item === 'string' ? item.length : 0;
    within('a join', chars, 'characters');
  },
  split([text, separator, most]) {
    if (typeof text !== 'string' || typeof separator !== 'string') return;
    const parts = partsOf(text, separator);
    const cap = typeof most === 'bigint' && most > 0n ? Number(most) : Infinity;
    within('a split', Math.min(parts, cap), 'items');
  },
  hex([bytes]) {
    if (bytes instanceof Uint8Array) within('hex text', bytes.length * 2, 'characters', { offHeap: true });
  },
  base64([bytes]) {
    if (bytes instanceof Uint8Array) within('base64 text', Math.ceil(bytes.length / 3) * 4, 'characters', { offHeap: true });
  },
  string([bytes]) {
    if (bytes instanceof Uint8Array) within('string(bytes)', bytes.length, 'characters', { offHeap: true });
  },
  bytes([text]) {
    if (typeof text === 'string') within('bytes(…)', Buffer.byteLength(text), 'bytes', { offHeap: true });
  },
  matches([, pattern]) {
    if (typeof pattern === 'string') within('a matches() pattern', pattern.length, 'characters', { limit: growthLimits.patternChars });
  },
  json([bytes]) {
    if (bytes instanceof Uint8Array) within('bytes.json()', bytes.length, 'bytes', { limit: growthLimits.jsonBytes });
  },
};

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

/** The name of a call (`bytes(x)`) or method call (`x.hex()`): the first of the node's operands. */
const calledName = (node: ASTNode): unknown => (Array.isArray(node.args) ? node.args[0] : undefined);

/**
 * Bounds the values `program`'s operations make (growthLimits): wraps, on each `+` node and each call of a
 * function in `functionChecks`, the handler cel-js chose when it type-checked the expression, with a check of the
 * operands before the operation runs (a call's handler takes its evaluated operands as one array, a method's
 * receiver first). Type-checks `program` first, as its first evaluation would; a program that does not check is
 * left as it is, and its evaluation fails as before.
 */
export function limitGrowth<Program extends { ast: ASTNode; check: () => { valid: boolean } }>(program: Program): Program {
  if (!program.check().valid) return program;
  const pending: ASTNode[] = [program.ast];
  for (let node = pending.pop(); node; node = pending.pop()) {
    if (node.op === '+') guard(node, ([left, right]) => checkConcatenation(left, right));
    else if (node.op === 'call' || node.op === 'rcall') {
      const name = calledName(node);
      const check = typeof name === 'string' && Object.hasOwn(functionChecks, name) ? functionChecks[name] : undefined;
      if (check) guard(node, ([operands]) => check(Array.isArray(operands) ? operands : []));
    }
    pending.push(...operandNodes(node.args));
  }
  return program;
}
