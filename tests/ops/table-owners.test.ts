import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { entities } from '../../db/entities/index.js';

/**
 * Every SQL statement lives in db/, and every statement on `jobs` in db/jobs/ (README, "Architecture"):
 * a new column, or a change to how a table is written, is made in one place. Statements are found in the
 * template literals of the runtime folders (ops/ tooling and tests may query what they like).
 */
const tables = entities.map((entity) => entity.meta.tableName ?? entity.meta.collection).filter(Boolean);
const statement = new RegExp(`\\b(insert\\s+into|update|delete\\s+from|from|join)\\s+(${tables.join('|')})\\b`, 'i');

function statementsIn(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  return [...source.matchAll(/`[^`]*`/g)].flatMap((literal) => {
    const found = statement.exec(literal[0]);
    return found ? [`${file}: ${found[0]}`] : [];
  });
}

const runtimeFiles = execFileSync('git', ['ls-files', 'config.ts', 'lib', 'db', 'jobs', 'queue', 'workers', 'api'], { encoding: 'utf8' })
  .split('\n')
  .filter((file) => file.endsWith('.ts') && !file.startsWith('db/migrations/'));

describe('table owners', () => {
  it('finds the tables it looks for', () => {
    expect(tables).toContain('jobs');
    expect(tables.length).toBeGreaterThan(20);
  });

  it('keeps every SQL statement in db/', () => {
    expect(runtimeFiles.filter((file) => !file.startsWith('db/')).flatMap(statementsIn)).toEqual([]);
  });

  it('keeps every statement on jobs in db/jobs/', () => {
    const onJobs = runtimeFiles
      .filter((file) => file.startsWith('db/') && !file.startsWith('db/jobs/'))
      .flatMap(statementsIn)
      .filter((found) => /\bjobs$/i.test(found));
    expect(onJobs).toEqual([]);
  });
});
