import type { EntityManager } from '@mikro-orm/postgresql';

/** How much one list page may hold: at most `limit` rows and, past its first, at most `maxBytes` of their large columns. */
export interface PageBound {
  limit: number;
  maxBytes: number;
}

/** The rows of one list page, and whether more follow its last. */
export interface PageRows<Row> {
  rows: Row[];
  more: boolean;
}

/** How a reader's candidate rows are measured and ordered for the cut. */
export interface PageMeasure {
  /** The page order, in the candidates' output column names (`index`, `id desc`). */
  orderBy: string;
  /** SQL of one row's large columns' size in bytes, e.g. `coalesce(octet_length(result::text), 0)`. */
  bytes: string;
}

/** A row's large columns when they are a `result` (jsonb) and an `error` (text): a job's or a batch item's. */
export const resultAndErrorBytes = 'coalesce(octet_length(result::text), 0) + coalesce(octet_length(error), 0)';

/** The columns the cut adds to each row (left out of the rows returned). */
interface CutColumns {
  candidateCount: string | number;
  pagePosition: string | number;
  pageBytes: string | number;
}

/**
 * Reads the page `candidates` (a select of at most `bound.limit + 1` rows in page order, bound with `params`) answers:
 * its rows up to `bound.limit` and, past the first, while their large columns add up to at most `bound.maxBytes`.
 * The cut is made by PostgreSQL (a running sum in page order), so rows past it never reach this process: a page of
 * 100 results near RESULT_MAX_BYTES would otherwise be ~100 MB read, held and serialised by the API. `more` says a
 * candidate was left out, so the page's next cursor continues right after its last row.
 */
export async function readPage<Row extends object>(
  em: EntityManager,
  candidates: { text: string; params: unknown[] },
  measure: PageMeasure,
  bound: PageBound,
): Promise<PageRows<Row>> {
  const found = await em.getConnection().execute<Array<Row & CutColumns>>(
    `select * from (
       select candidates.*, count(*) over () as "candidateCount",
              row_number() over running as "pagePosition", sum(${measure.bytes}) over running as "pageBytes"
         from (${candidates.text}) candidates
       window running as (order by ${measure.orderBy} rows unbounded preceding)
     ) measured
     where "pagePosition" = 1 or ("pagePosition" <= ? and "pageBytes" <= ?)
     order by "pagePosition"`,
    [...candidates.params, bound.limit, bound.maxBytes],
  );
  const candidateCount = Number(found[0]?.candidateCount ?? 0);
  const rows = found.map(({ candidateCount: _count, pagePosition: _position, pageBytes: _bytes, ...row }) => row as unknown as Row);
  return { rows, more: candidateCount > rows.length };
}
