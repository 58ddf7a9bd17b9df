/**
 * `npm run client:generate` writes clients/typescript/src/schema.d.ts from the API's OpenAPI document, built
 * in-process (no server). `npm run client:check` (in .ci/run) renders it again into a temp file and fails on any
 * difference, so a change of the API's shape shows up as a failed check and, once regenerated, as compile errors
 * wherever the client relied on the old shape.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildOpenApiDocument } from '../../../api/openapi.js';
import { firstDifference, renderSchema, schemaFile } from './schema-source.js';

async function main(): Promise<number> {
  const generated = await renderSchema(buildOpenApiDocument());
  if (!process.argv.includes('--check')) {
    fs.writeFileSync(schemaFile, generated);
    console.log(`wrote ${path.relative(process.cwd(), schemaFile)}`);
    return 0;
  }
  const temp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'chrysalis-schema-')), 'schema.d.ts');
  fs.writeFileSync(temp, generated);
  const checkedIn = fs.existsSync(schemaFile) ? fs.readFileSync(schemaFile, 'utf8') : '';
  const difference = firstDifference(fs.readFileSync(temp, 'utf8'), checkedIn);
  fs.rmSync(path.dirname(temp), { recursive: true, force: true });
  if (difference === null) {
    console.log(`${path.relative(process.cwd(), schemaFile)} matches the API's OpenAPI document`);
    return 0;
  }
  console.error(
    `${path.relative(process.cwd(), schemaFile)} is out of date with the API: run \`npm run client:generate\` and fix what no longer compiles.\n${difference}`,
  );
  return 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
