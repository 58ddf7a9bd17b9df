/**
 * Piscina entry: the shape of a CEL expression (variables, operators, functions) for divide's
 * projections. Pure — no imports of db/ or workers/ — so a unit test can call it.
 */
import { createCelEnvironment } from '../invoke/cel-environment.js';
import { analyzeExpression, type ExpressionShape } from './analyze-expression.js';

export interface AnalyzeInput {
  expression: string;
}

const env = createCelEnvironment();

export default function analyze({ expression }: AnalyzeInput): ExpressionShape {
  return analyzeExpression(env, expression);
}
