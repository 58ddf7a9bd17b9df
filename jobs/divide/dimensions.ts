import { createHash } from 'node:crypto';
import stringify from 'safe-stable-stringify';
import type { SubstrateFacts } from '../../db/repositories/substrate-facts.js';
import type { ExpressionShape } from './analyze-expression.js';

export const fibonacciSequence = [0, 1, 1, 2, 3, 5, 8, 13, 21] as const;

const dimensionNames = [
  ['Void', 'What the substrate leaves open: the free variables an invocation must fill'],
  ['Identity', 'Who it is: its 64-bit identity'],
  ['Domain', 'What kind of thing it is: expression or constant, arity, and the kind of value it yields'],
  ['Length', 'Its attributes: the metadata it carries'],
  ['Area', 'Its relationships to other substrates, by type and direction'],
  ['Volume', 'Its state and change over time'],
  ['Frequency', 'The temporal pattern of its invocations'],
  ['System', 'Its behaviours: the operators and functions its expression uses'],
  ['Complete', 'The whole: a digest over every other dimension'],
] as const;

export interface Dimension {
  level: number;
  name: string;
  description: string;
  value: unknown;
}

/** Projects stored facts onto the 9 Fibonacci dimensions. Pure: same facts, same answer. */
export function projectDimensions(facts: SubstrateFacts, shape: ExpressionShape | null, now: Date): Dimension[] {
  const ageSeconds = Math.max(0, Math.round((now.getTime() - facts.createdAt.getTime()) / 1000));
  const inv = facts.invocations;
  const spanHours = inv.first && inv.last ? Math.max((inv.last.getTime() - inv.first.getTime()) / 3_600_000, 1 / 60) : null;
  const values: unknown[] = [
    { free_variables: shape?.variables ?? [] },
    { substrate_id: facts.id, identity: facts.identity },
    {
      expression_type: facts.expressionType,
      arity: shape?.variables.length ?? 0,
      yields: facts.expressionType === 'constant' ? 'number' : yields(shape),
      ...(facts.expressionType === 'constant' ? { value: facts.value } : {}),
    },
    { attribute_count: Object.keys(facts.metadata).length, attributes: facts.metadata },
    {
      outgoing: facts.relationships.outgoing,
      incoming: facts.relationships.incoming,
      degree: sum(facts.relationships.outgoing) + sum(facts.relationships.incoming),
    },
    {
      created_at: facts.createdAt.toISOString(),
      updated_at: facts.updatedAt.toISOString(),
      age_seconds: ageSeconds,
      changed: facts.updatedAt.getTime() > facts.createdAt.getTime(),
    },
    {
      invocations: inv.total,
      completed: inv.completed,
      failed: inv.failed,
      last_24h: inv.lastDay,
      first_invoked_at: inv.first?.toISOString() ?? null,
      last_invoked_at: inv.last?.toISOString() ?? null,
      per_hour: spanHours === null ? 0 : Math.round((inv.total / spanHours) * 100) / 100,
    },
    {
      operators: shape?.operators ?? [],
      functions: shape?.functions ?? [],
      node_count: shape?.nodeCount ?? 1,
      depth: shape?.depth ?? 1,
    },
  ];
  values.push({
    digest: createHash('sha256')
      .update(stringify(values) ?? '')
      .digest('hex'),
    dimensions_folded: values.length,
  });
  return dimensionNames.map(([name, description], index) => ({
    level: fibonacciSequence[index] ?? 0,
    name,
    description,
    value: values[index],
  }));
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((total, n) => total + n, 0);
}

const logical = new Set(['&&', '||', '!_', '==', '!=', '<', '<=', '>', '>=', 'in']);
function yields(shape: ExpressionShape | null): string {
  if (!shape) return 'unknown';
  if (shape.operators.some((op) => logical.has(op)) && !shape.operators.some((op) => ['+', '-', '*', '/', '%'].includes(op)))
    return 'boolean';
  if (shape.operators.length === 0 && shape.functions.length === 0) return 'value';
  return 'computed';
}
