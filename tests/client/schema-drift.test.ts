import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { buildOpenApiDocument } from '../../api/openapi.js';
import { firstDifference, renderSchema, schemaFile } from '../../clients/typescript/scripts/schema-source.js';

const clientSources = path.resolve('clients/typescript/src');

/** Type errors of the client's own sources when `schema.d.ts` holds `schemaText` (the file on disk is left alone). */
function clientTypeErrors(schemaText: string): string[] {
  const config = ts.getParsedCommandLineOfConfigFile(
    path.resolve('tsconfig.json'),
    {},
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined },
  )!;
  const options = { ...config.options, noEmit: true };
  const roots = fs
    .readdirSync(clientSources, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => path.join(clientSources, file));
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (file, language, ...rest) =>
    path.resolve(file) === schemaFile ? ts.createSourceFile(file, schemaText, language) : getSourceFile(file, language, ...rest);
  const program = ts.createProgram(roots, options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .map(
      (diagnostic) =>
        `${diagnostic.file ? path.relative(process.cwd(), diagnostic.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`,
    );
}

/** The API's document with the job's `state` renamed to `status`: a change of shape a client must notice. */
function documentWithRenamedJobState() {
  const document = structuredClone(buildOpenApiDocument()) as {
    components: { schemas: Record<string, { properties: Record<string, unknown>; required: string[] }> };
  };
  const job = document.components.schemas.Job!;
  job.properties = Object.fromEntries(Object.entries(job.properties).map(([name, schema]) => [name === 'state' ? 'status' : name, schema]));
  job.required = job.required.map((name) => (name === 'state' ? 'status' : name));
  return document;
}

describe("the client's generated types", () => {
  it("are checked in as generated from the API's OpenAPI document (npm run client:check passes)", async () => {
    const { stdout } = await promisify(execFile)('npm', ['run', '--silent', 'client:check'], { encoding: 'utf8' });
    expect(stdout).toMatch(/matches the API's OpenAPI document/);
  }, 60_000);

  it('client:check reports the first difference when the API changes shape', async () => {
    const drifted = await renderSchema(documentWithRenamedJobState());
    const difference = firstDifference(drifted, fs.readFileSync(schemaFile, 'utf8'));
    expect(difference).toMatch(/first difference at line \d+/);
    expect(difference).toMatch(/\+.*status: "queued"/);
  });

  it('the client compiles against its checked-in types and fails to compile once they follow the changed API', async () => {
    expect(clientTypeErrors(fs.readFileSync(schemaFile, 'utf8'))).toEqual([]);
    const errors = clientTypeErrors(await renderSchema(documentWithRenamedJobState()));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.join('\n')).toMatch(/clients\/typescript\/src\/.*'state'/);
  }, 120_000);
});
