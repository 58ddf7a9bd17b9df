import type { Environment } from '@marcbachmann/cel-js';

export interface ExpressionShape {
  /** Free variables: the parameters an invocation must supply. */
  variables: string[];
  /** Operators used, e.g. `*`, `==`, `?:`. */
  operators: string[];
  /** Functions and macros called, e.g. `size`, `map`. */
  functions: string[];
  nodeCount: number;
  depth: number;
}

interface AstNode {
  op: string;
  args: unknown;
}

const comprehensionMacros = new Set(['map', 'filter', 'all', 'exists', 'exists_one']);
const structural = new Set(['id', 'value', 'list', 'map', 'call', 'rcall', '.', '.?', '[]', '[?]']);

function isNode(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && 'op' in value && 'args' in value;
}

/** Walks a parsed CEL AST and reports its shape. Pure. */
export function analyzeExpression(env: Environment, expression: string): ExpressionShape {
  const ids = new Set<string>();
  const bound = new Set<string>();
  const operators = new Set<string>();
  const functions = new Set<string>();
  let nodeCount = 0;
  let maxDepth = 0;

  const visit = (value: unknown, depth: number): void => {
    if (Array.isArray(value)) return value.forEach((item) => visit(item, depth));
    if (!isNode(value)) return;
    nodeCount += 1;
    maxDepth = Math.max(maxDepth, depth);
    const { op, args } = value;
    if (op === 'id' && typeof args === 'string') ids.add(args);
    else if (op === 'call' || op === 'rcall') {
      const [name, ...rest] = args as [string, ...unknown[]];
      functions.add(name);
      const callArgs = rest.at(-1);
      if (op === 'rcall' && comprehensionMacros.has(name) && Array.isArray(callArgs) && isNode(callArgs[0])) {
        const variable = callArgs[0].args;
        if (typeof variable === 'string') bound.add(variable);
      }
    } else if (!structural.has(op)) operators.add(op);
    if (typeof args === 'object') visit(args, depth + 1);
  };
  visit(env.parse(expression).ast, 1);

  return {
    variables: [...ids].filter((id) => !bound.has(id)).sort(),
    operators: [...operators].sort(),
    functions: [...functions].sort(),
    nodeCount,
    depth: maxDepth,
  };
}
