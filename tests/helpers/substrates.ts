import type { httpClient } from './http.js';

/** Creates an expression substrate for the caller and returns its id. */
export async function createExpressionSubstrate(
  request: ReturnType<typeof httpClient>,
  token: string,
  expression: string,
): Promise<string> {
  const created = await request('POST', '/api/v1/substrates', { token, body: { expression_type: 'expression', expression } });
  if (created.status !== 201 && created.status !== 200)
    throw new Error(`substrate not created: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body.substrate_id as string;
}
