import openapiTS, { astToString, COMMENT_HEADER, type OpenAPI3 } from 'openapi-typescript';
import { fileURLToPath } from 'node:url';

/** Where the generated types are checked in. */
export const schemaFile = fileURLToPath(new URL('../src/schema.d.ts', import.meta.url));

const header = `${COMMENT_HEADER.trimEnd()}\n/* Regenerate with \`npm run client:generate\`; \`npm run client:check\` (CI) fails while it differs. */\n\n`;

/**
 * The TypeScript source of `schema.d.ts` for an OpenAPI document. Deterministic: the same document gives
 * the same text, so CI can regenerate and compare.
 */
export async function renderSchema(document: unknown): Promise<string> {
  const ast = await openapiTS(document as OpenAPI3, { silent: true, alphabetize: false });
  return header + astToString(ast);
}

/** The first line where two texts part, with a few lines of each around it; null when they are equal. */
export function firstDifference(expected: string, actual: string, context = 3): string | null {
  if (expected === actual) return null;
  const want = expected.split('\n');
  const have = actual.split('\n');
  let line = 0;
  while (line < want.length && line < have.length && want[line] === have[line]) line++;
  const from = Math.max(0, line - context);
  const show = (lines: string[], sign: string) =>
    lines
      .slice(from, line + context + 1)
      .map((text, i) => `${sign}${String(from + i + 1).padStart(6)} ${text}`)
      .join('\n');
  return `first difference at line ${line + 1}\n--- checked in\n${show(have, '-')}\n+++ generated from the API\n${show(want, '+')}`;
}
