import { AsyncLocalStorage } from 'node:async_hooks';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createOrm, type Orm } from '../../db/orm.js';
import { inTransaction } from '../../db/transaction.js';
import { startTestApp, type TestApp } from '../helpers/test-app.js';

let app: TestApp;
let orm: Orm;

beforeAll(async () => {
  app = await startTestApp({ PLATFORM_SCHEDULES: 'false' });
  orm = await createOrm(app.config.databaseUrl, { poolMax: 4 });
  await app.sql('create table tx_probe (name text primary key)');
});

afterAll(async () => {
  await orm?.close();
  await app?.close();
});

beforeEach(async () => {
  await app.sql('truncate tx_probe');
});

const names = async () => (await app.sql<{ name: string }>('select name from tx_probe order by name')).map((row) => row.name);
const insert = (tx: Orm['em'], name: string) => tx.execute('insert into tx_probe (name) values (?)', [name]);

describe('inTransaction', () => {
  it('commits what the work wrote and returns its result', async () => {
    const result = await inTransaction(orm.em, async (tx) => {
      await insert(tx, 'a');
      return 42;
    });
    expect(result).toBe(42);
    expect(await names()).toEqual(['a']);
  });

  it('rolls everything back when the work throws, and rethrows', async () => {
    await expect(
      inTransaction(orm.em, async (tx) => {
        await insert(tx, 'a');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await names()).toEqual([]);
  });

  it('keeps the work invisible to other connections until it commits', async () => {
    let seenMeanwhile: string[] = ['not read'];
    await inTransaction(orm.em, async (tx) => {
      await insert(tx, 'a');
      seenMeanwhile = await names();
    });
    expect(seenMeanwhile).toEqual([]);
    expect(await names()).toEqual(['a']);
  });

  it('nests as a savepoint: an inner failure undoes only the inner work', async () => {
    await inTransaction(orm.em, async (outer) => {
      await insert(outer, 'outer');
      await expect(
        inTransaction(outer, async (inner) => {
          await insert(inner, 'inner');
          throw new Error('inner fails');
        }),
      ).rejects.toThrow('inner fails');
      await insert(outer, 'after');
    });
    expect(await names()).toEqual(['after', 'outer']);
  });

  it('never enters an AsyncLocalStorage (which would switch on promise hooks for the whole process)', async () => {
    const run = vi.spyOn(AsyncLocalStorage.prototype, 'run');
    const enterWith = vi.spyOn(AsyncLocalStorage.prototype, 'enterWith');
    try {
      await inTransaction(orm.em, async (tx) => {
        await insert(tx, 'a');
        await inTransaction(tx, (inner) => insert(inner, 'b'));
      });
      expect(run).not.toHaveBeenCalled();
      expect(enterWith).not.toHaveBeenCalled();
    } finally {
      run.mockRestore();
      enterWith.mockRestore();
    }
  });
});
