import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrm, type Orm } from '../../db/orm.js';
import { executePrepared, executePreparedWithSettings } from '../../db/prepared.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

/** One pooled connection, so every statement below runs on the connection the one before used. */
let app: TestApp;
let orm: Orm;

beforeAll(async () => {
  app = await startTestApp();
  orm = await createOrm(app.config.databaseUrl, { poolMax: 1 });
});

afterAll(async () => {
  await orm?.close();
  await app?.close();
});

const enableSort = async () =>
  (await executePrepared<{ enable_sort: string }>(orm.em.fork(), 'probe-enable-sort', 'show enable_sort', []))[0]?.enable_sort;

describe('executePreparedWithSettings', () => {
  const settings = `select set_config('enable_sort', 'off', true)`;

  it('runs the statement under its settings, which do not outlive it on the pooled connection', async () => {
    const rows = await executePreparedWithSettings<{ value: string }>(
      orm.em.fork(),
      settings,
      'probe-setting',
      'select current_setting($1) as value',
      ['enable_sort'],
    );
    expect(rows).toEqual([{ value: 'off' }]);
    expect(await enableSort()).toBe('on');
  });

  it('rolls back when the statement fails: the error reaches the caller and the connection is usable, settings gone', async () => {
    await expect(executePreparedWithSettings(orm.em.fork(), settings, 'probe-failing', 'select 1 / $1::int as value', [0])).rejects.toThrow(
      /division by zero/,
    );
    expect(await enableSort()).toBe('on');
  });
});
