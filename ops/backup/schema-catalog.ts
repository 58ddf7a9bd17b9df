import type pg from 'pg';

export interface CatalogTable {
  name: string;
  columns: string[];
  partitioned: boolean;
}

/** The migration table MikroORM keeps (db/mikro-orm.config.ts). */
export const migrationTable = 'mikro_orm_migrations';

/**
 * The tables of the current schema (partitions are read through their parent), with their stored columns
 * in order. Views, foreign tables and generated columns hold nothing a backup needs.
 */
export async function listTables(client: pg.ClientBase): Promise<CatalogTable[]> {
  const { rows } = await client.query<{ name: string; columns: string[]; partitioned: boolean }>(
    `select c.relname as name, c.relkind = 'p' as partitioned,
            array(select a.attname::text from pg_attribute a
                   where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
                   order by a.attnum) as columns
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = current_schema() and c.relkind in ('r', 'p') and not c.relispartition
      order by c.relname`,
  );
  return rows;
}

/** Sequences of the current schema (serial and identity columns' included). */
export async function listSequences(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = current_schema() and c.relkind = 'S' order by c.relname`,
  );
  return rows.map((row) => row.name);
}

/** How many relations the current schema holds: a restore wants none. */
export async function countRelations(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    `select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = current_schema() and c.relkind in ('r', 'p', 'S', 'v', 'm', 'f')`,
  );
  return rows[0]?.n ?? 0;
}

/** Foreign keys between tables of the current schema, as referencing → referenced (partitions mapped to their parent). */
export async function listForeignKeys(client: pg.ClientBase): Promise<Array<{ from: string; to: string }>> {
  const { rows } = await client.query<{ from: string; to: string }>(
    `select distinct src.relname as from, dst.relname as to
       from pg_constraint k
       join pg_class src on src.oid = coalesce((select inhparent from pg_inherits where inhrelid = k.conrelid limit 1), k.conrelid)
       join pg_class dst on dst.oid = coalesce((select inhparent from pg_inherits where inhrelid = k.confrelid limit 1), k.confrelid)
       join pg_namespace n on n.oid = src.relnamespace
      where k.contype = 'f' and n.nspname = current_schema()`,
  );
  return rows;
}

/**
 * Tables in an order where every table comes after those it references, so rows can be loaded with their
 * foreign keys checked as usual. A table referencing itself is fine (checks run at the end of its COPY).
 */
export function loadOrder(tables: string[], foreignKeys: Array<{ from: string; to: string }>): string[] {
  const known = new Set(tables);
  const dependsOn = new Map(tables.map((table) => [table, new Set<string>()]));
  for (const { from, to } of foreignKeys) if (from !== to && known.has(from) && known.has(to)) dependsOn.get(from)!.add(to);
  const ordered: string[] = [];
  const placed = new Set<string>();
  while (ordered.length < tables.length) {
    const ready = tables.filter((table) => !placed.has(table) && [...dependsOn.get(table)!].every((dependency) => placed.has(dependency)));
    if (ready.length === 0) {
      const stuck = tables.filter((table) => !placed.has(table));
      throw new Error(`foreign keys form a cycle between ${stuck.join(', ')}: these tables cannot be loaded one after another`);
    }
    for (const table of ready) {
      ordered.push(table);
      placed.add(table);
    }
  }
  return ordered;
}
