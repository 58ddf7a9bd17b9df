import type { ASTNode } from '@marcbachmann/cel-js';

export const minInt64 = -(2n ** 63n);
export const maxInt64 = 2n ** 63n - 1n;
/** |−2⁶³|: a literal only as the operand of one unary minus, which CEL reads as the literal −2⁶³. */
const minInt64Magnitude = -minInt64;

function isNode(value: unknown): value is ASTNode {
  return typeof value === 'object' && value !== null && 'op' in value && 'args' in value;
}

/** The nodes among a node's operands (calls, lists and maps nest them in arrays beside names). */
export function operandNodes(args: unknown): ASTNode[] {
  if (isNode(args)) return [args];
  return Array.isArray(args) ? args.flatMap(operandNodes) : [];
}

/** `minusesAbove`: how many unary minuses stand directly over this node, one inside the other. */
function firstOutOfRange(node: ASTNode, minusesAbove: number): ASTNode | null {
  if (node.op === 'value') {
    const value = node.args;
    if (typeof value !== 'bigint' || value <= maxInt64) return null;
    return value === minInt64Magnitude && minusesAbove === 1 ? null : node;
  }
  const below = node.op === '-_' ? minusesAbove + 1 : 0;
  for (const operand of operandNodes(node.args)) {
    const found = firstOutOfRange(operand, below);
    if (found) return found;
  }
  return null;
}

/**
 * The first int literal outside int64 (−2⁶³ … 2⁶³−1), in source order, or null. CEL refuses such a literal when
 * it compiles the expression; cel-js parses any size (a bigint) and only its evaluation overflows.
 *
 * `-9223372036854775808` is CEL's least int (a conformance test: self_eval_int_negative_min), so 2⁶³ passes
 * under exactly one unary minus. cel-js keeps no parentheses in its AST, so `-(9223372036854775808)` passes
 * too (it evaluates to −2⁶³ all the same), and `-(-9223372036854775808)` is refused with
 * `--9223372036854775808` (it could only overflow).
 */
export function outOfRangeIntLiteral(ast: ASTNode): ASTNode | null {
  return firstOutOfRange(ast, 0);
}
