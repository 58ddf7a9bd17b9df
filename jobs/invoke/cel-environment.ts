import { Environment, ParseError, type ASTNode } from '@marcbachmann/cel-js';
import { unstorableReason } from '../storable-text.js';
import { maxInt64, minInt64, outOfRangeIntLiteral } from './int-literal-range.js';

/** Caps that keep an expression cheap to parse and bounded to evaluate. Checked at submit and in the task. */
export const expressionLimits = {
  /** Characters in one expression. */
  maxLength: 4096,
  /** Parenthesis / call nesting. */
  maxDepth: 32,
  /** AST nodes after parsing. */
  maxAstNodes: 1000,
  /** Elements in a list literal. */
  maxListElements: 1000,
} as const;

/**
 * `%` of doubles: JavaScript's remainder, whose sign is the dividend's as with CEL's `int % int`. A zero divisor
 * (either sign) fails the evaluation as `int % 0` does in cel-js, rather than answering NaN.
 */
function remainder(left: number, right: number): number {
  if (right === 0) throw new RangeError('modulo by zero');
  return left % right;
}

type Arithmetic = (left: number, right: number) => number;
const arithmetic: Record<string, Arithmetic> = {
  '+': (l, r) => l + r,
  '-': (l, r) => l - r,
  '*': (l, r) => l * r,
  '/': (l, r) => l / r,
  '%': remainder,
};

/**
 * CEL as Chrysalis speaks it: undeclared variables are parameters, and int/double mix in arithmetic
 * (JSON numbers arrive as doubles, so `x + 1` must work). `%` takes doubles too: standard CEL defines it
 * for ints only, so with every JSON number a double, `x % y` could never run on parameters.
 */
export function createCelEnvironment(): Environment {
  const env = new Environment({
    unlistedVariablesAreDyn: true,
    homogeneousAggregateLiterals: false,
    limits: {
      maxAstNodes: expressionLimits.maxAstNodes,
      maxDepth: expressionLimits.maxDepth,
      maxListElements: expressionLimits.maxListElements,
      maxMapEntries: expressionLimits.maxListElements,
      maxCallArguments: 32,
    },
  });
  for (const [op, apply] of Object.entries(arithmetic)) {
    env.registerOperator(`double ${op} int`, (left: number, right: bigint) => apply(left, Number(right)));
    env.registerOperator(`int ${op} double`, (left: bigint, right: number) => apply(Number(left), right));
  }
  // `double + double` and the other three are CEL's own; `%` of two doubles is not.
  env.registerOperator('double % double', remainder);
  return env;
}

export interface ExpressionProblem {
  message: string;
  /** 0-based character offset, 1-based line and column of the fault, when known. */
  position: { offset: number; line: number; column: number } | null;
}

/**
 * Parses without evaluating, as CEL compiles: also refuses int literals outside int64 (cel-js's parser refuses
 * only uint ones). Returns null when the expression is valid, else what is wrong and where.
 */
export function checkExpression(env: Environment, expression: string): ExpressionProblem | null {
  if (expression.length > expressionLimits.maxLength) {
    return { message: `expression is longer than ${expressionLimits.maxLength} characters`, position: null };
  }
  let ast: ASTNode;
  try {
    ast = env.parse(expression).ast;
  } catch (error) {
    if (!(error instanceof ParseError)) throw error;
    const offset = error.node?.pos ?? error.range?.start;
    return {
      message: error.summary || (error.message.split('\n')[0] ?? 'syntax error'),
      position: offset === undefined ? null : locate(expression, offset),
    };
  }
  const literal = outOfRangeIntLiteral(ast);
  if (literal) {
    return { message: `int literal outside the int64 range (${minInt64} to ${maxInt64})`, position: locate(expression, literal.pos) };
  }
  return null;
}

function locate(text: string, offset: number): NonNullable<ExpressionProblem['position']> {
  const before = text.slice(0, offset).split('\n');
  return { offset, line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

/** Text of a result, refused when PostgreSQL could not store it (so only this evaluation fails). */
function storable(text: string, what: string): string {
  const reason = unstorableReason(text);
  if (reason) throw new RangeError(`result ${what} ${reason}`);
  return text;
}

/**
 * A CEL int, refused outside int64. cel-js checks `+ - *` itself but not `int / int` nor unary minus, so
 * `-9223372036854775808 / -1` and `-(-9223372036854775807 - 1)` come back as 2⁶³; CEL makes that an
 * overflow error. Checked on the result, so an intermediate overflow that a later step brings back into
 * range (`(… / -1) - 1`) still passes: cel-js offers no hook on its built-in operators.
 */
function int64(value: bigint): bigint {
  if (value < minInt64 || value > maxInt64) throw new RangeError(`integer overflow: ${value} is outside the int64 range`);
  return value;
}

/** A CEL uint64 as cel-js makes it: an object whose value is a bigint. */
const uint64Of = (value: object): bigint | null => {
  const primitive = value.valueOf();
  return typeof primitive === 'bigint' ? primitive : null;
};

/** A CEL type value (`type(x)`) as cel-js makes it; JSON has none, so it answers with the type's name (`double`). */
const typeNameOf = (value: object): string | null => {
  const name = (value as { name?: unknown }).name;
  return Object.prototype.toString.call(value) === `[object Type<${String(name)}>]` ? String(name) : null;
};

/** A JSON number where it is exact, else the decimal string (as for ints past 2⁵³). */
const exactNumber = (value: bigint): number | string =>
  value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();

/** A CEL duration as cel-js makes it: whole seconds (a bigint) and nanoseconds of the same sign (or zero). */
const durationOf = (value: object): { seconds: bigint; nanos: number } | null => {
  const { seconds, nanos } = value as { seconds?: unknown; nanos?: unknown };
  return typeof seconds === 'bigint' && typeof nanos === 'number' ? { seconds, nanos } : null;
};

/**
 * A duration as CEL's JSON has it: seconds with up to nine decimals and an `s` (`"90s"`, `"-1.5s"`). Made from its
 * total nanoseconds: cel-js's own text of a negative fraction is wrong (`-1.5s` as `"-10.5s"`, `-0.5s` as `"00.5s"`).
 */
function durationText({ seconds, nanos }: { seconds: bigint; nanos: number }): string {
  const total = seconds * 1_000_000_000n + BigInt(Math.trunc(nanos));
  const magnitude = total < 0n ? -total : total;
  const fraction = magnitude % 1_000_000_000n;
  const decimals = fraction === 0n ? '' : `.${fraction.toString().padStart(9, '0').replace(/0+$/, '')}`;
  return `${total < 0n ? '-' : ''}${magnitude / 1_000_000_000n}${decimals}s`;
}

/** Deepest nesting of lists and maps a result may have, as for a request body: JSON.stringify of a far deeper one overflows the stack. */
export const maxResultDepth = 64;

/**
 * CEL values to JSON, as CEL's own JSON mapping has them: int and uint as numbers (decimal strings past 2⁵³),
 * bytes as base64, a timestamp as RFC 3339 text, a duration as seconds text (`"90s"`), maps as objects; a type
 * as its name. Throws on non-finite numbers, on ints outside int64, on text PostgreSQL cannot store and on
 * nesting deeper than `maxResultDepth` (a result 3,000 lists deep had ended the worker process when the
 * invocation cache encoded it on its main thread).
 */
export function celToJson(value: unknown, depth = 0): unknown {
  if (typeof value === 'bigint') return exactNumber(int64(value));
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`result is not a finite number (${value})`);
    return value;
  }
  if (typeof value === 'string') return storable(value, 'text');
  if (value === null || typeof value === 'boolean') return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (value instanceof Date) {
    // CEL's timestamps run from year 1 to 9999; cel-js lets arithmetic leave that range.
    const year = value.getUTCFullYear();
    if (Number.isNaN(year) || year < 1 || year > 9999) throw new RangeError('result timestamp is outside years 0001–9999');
    return value.toISOString();
  }
  if (typeof value !== 'object') return storable(String(value), 'text');
  const nested = depth + 1;
  if ((Array.isArray(value) || value instanceof Map || isPlainObject(value)) && nested > maxResultDepth) {
    throw new RangeError(`result nests deeper than ${maxResultDepth} levels`);
  }
  if (Array.isArray(value)) return value.map((item) => celToJson(item, nested));
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [storable(String(k), 'key'), celToJson(v, nested)]));
  if (isPlainObject(value)) {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [storable(k, 'key'), celToJson(v, nested)]));
  }
  const uint = uint64Of(value);
  if (uint !== null) return exactNumber(uint);
  const typeName = typeNameOf(value);
  if (typeName !== null) return typeName;
  const duration = durationOf(value);
  if (duration !== null) return durationText(duration);
  // Whatever else says what it is as text.
  return storable(String(value), 'text');
}

function isPlainObject(value: object): boolean {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
