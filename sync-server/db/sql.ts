/**
 * The few SQL fragments that have no form valid on both SQLite and PostgreSQL, each named by what it means.
 * Every other statement of the server is written once, in the subset both take; test/unit/sql-portable.test.ts
 * prepares each on both (and compares result types and column names). That subset, in short:
 *  - upserts, not `INSERT OR IGNORE/REPLACE`: `ON CONFLICT DO NOTHING`, `ON CONFLICT (key) DO UPDATE SET c = excluded.c`
 *    (`INSERT … SELECT … WHERE true ON CONFLICT …` on SQLite); no rowid (an explicit id: migration 2);
 *  - no scalar min(a, b) / max(a, b): CASE; no sum() of a comparison: count(CASE WHEN … THEN 1 END);
 *    `CAST(sum(x) AS BIGINT)` (PostgreSQL sums bigints as numeric); no boolean result columns;
 *  - every selected column grouped or aggregated; a FROM subquery has an alias; `CROSS JOIN t WHERE …`, not `… ON`;
 *  - a parameter whose type PostgreSQL cannot infer gets `CAST(? AS TEXT)`; flags are 0 / 1 integers, `x = 1`;
 *  - camelCase aliases quoted (`AS "serviceDay"`), `"user"` quoted (a reserved word there), strings in single quotes;
 *  - `lower(x) LIKE lower(?)` where case must not matter; `NULLS FIRST` where a nullable column orders rows;
 *  - positional `?` parameters only (the PostgreSQL adapter numbers them);
 *  - text compares and sorts by bytes on both (keyset pages `token > ?`, JS merges of sorted lists): the PostgreSQL
 *    database must have LC_COLLATE C (or its text columns COLLATE "C"), never a locale's order.
 * A fragment takes the db first, then only constant strings (column names): the check evaluates the calls statically.
 */
import type { Db } from '../registry.js';

export type Dialect = 'sqlite' | 'postgres';

/** The dialect of a db: the PostgreSQL adapter carries `dialect = 'postgres'`; better-sqlite3's Database has none. */
export function dialectOf(db: object): Dialect {
  return (db as { dialect?: string }).dialect === 'postgres' ? 'postgres' : 'sqlite';
}

/**
 * Run SQLite tuning (pragmas) only on SQLite: PostgreSQL has no pragmas and its tuning is the server's.
 */
export function sqliteTuning<D extends object>(db: D, fn: (db: D) => void): void {
  if (dialectOf(db) === 'sqlite') fn(db);
}

/** Does the database have this table (in the current schema, on PostgreSQL)? */
export function tableExists(db: Db, name: string): boolean {
  const sql =
    dialectOf(db) === 'postgres'
      ? 'SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?'
      : "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?";
  return db.prepare(sql).get(name) !== undefined;
}

/**
 * `FROM … WHERE …` for "the rows of `table` (as `alias`) that `cond` finds for each row of `rows` (a JSON parameter's
 * subquery, as `rowsAlias`)": one index probe per row on both databases, whatever the table's size. The caller may go
 * on with `AND …`. SQLite's CROSS JOIN keeps this join order. PostgreSQL reorders a join freely, and a generic plan
 * cached while the table was small (statistics of a few thousand rows) hash-joined the whole table on every call: the
 * journal seq-scanned for each upload group, 34 ms at 200,000 entries and growing with it (docs/postgres.md "Ingest").
 * There a LATERAL subquery (OFFSET 0: never flattened into a join again) is a loop of probes.
 * `cond`'s parameters come after `rows`'s and before the caller's on both.
 */
export function probeEach(db: object, rows: string, rowsAlias: string, table: string, alias: string, cond: string): string {
  return dialectOf(db) === 'postgres'
    ? `FROM (${rows}) ${rowsAlias} CROSS JOIN LATERAL (SELECT * FROM ${table} ${alias} WHERE ${cond} OFFSET 0) ${alias} WHERE true`
    : `FROM (${rows}) ${rowsAlias} CROSS JOIN ${table} ${alias} WHERE ${cond}`;
}

/** A subquery of the strings of one parameter holding a JSON array of strings: `x IN (${jsonArrayValues(db)})`. */
export function jsonArrayValues(db: object): string {
  return dialectOf(db) === 'postgres' ? 'SELECT jsonb_array_elements_text(CAST(? AS jsonb)) AS value' : 'SELECT value FROM json_each(?)';
}

/**
 * A subquery of the pairs of one parameter holding a JSON array of two-element arrays (`[[token, bound], …]`): columns
 * `p0` (text) and `p1` (of type `second`: a number or a text). `FROM (${jsonPairs(db, 'bigint')}) b CROSS JOIN …`.
 */
export function jsonPairs(db: object, second: 'bigint' | 'text'): string {
  return dialectOf(db) === 'postgres'
    ? `SELECT e ->> 0 AS p0, CAST(e ->> 1 AS ${second === 'bigint' ? 'BIGINT' : 'TEXT'}) AS p1 FROM jsonb_array_elements(CAST(? AS jsonb)) AS e`
    : "SELECT value ->> '$[0]' AS p0, value ->> '$[1]' AS p1 FROM json_each(?)";
}

/** True when the text column holds the parameter's text anywhere (a plain substring, no pattern): `WHERE ${containsText(db, 'lists')}`. */
export function containsText(db: object, column: string): string {
  return dialectOf(db) === 'postgres' ? `strpos(${column}, ?) > 0` : `instr(${column}, ?) > 0`;
}

/**
 * A subquery of the rows of one parameter holding a JSON array of arrays (`[[v0, v1, …], …]`), one row each: columns
 * `p0`, `p1`, … typed by `types` (space-separated `text` or `bigint`, one per column). Many rows in one statement and
 * one round trip (a multi-row INSERT … SELECT, a join with a batch of keys), with one statement text whatever the
 * row count: `INSERT INTO t(a, b) SELECT p0, p1 FROM (${jsonRows(db, 'text bigint')}) r WHERE true ON CONFLICT …`.
 */
export function jsonRows(db: object, types: string): string {
  const cols = types.split(' ').filter((t) => t !== '');
  for (const t of cols) if (t !== 'text' && t !== 'bigint') throw new Error(`jsonRows: a column is text or bigint, not ${t}`);
  return dialectOf(db) === 'postgres'
    ? `SELECT ${cols.map((t, i) => (t === 'bigint' ? `CAST(e ->> ${i} AS BIGINT) AS p${i}` : `e ->> ${i} AS p${i}`)).join(', ')} FROM jsonb_array_elements(CAST(? AS jsonb)) AS e`
    : `SELECT ${cols.map((_t, i) => `value ->> '$[${i}]' AS p${i}`).join(', ')} FROM json_each(?)`;
}
