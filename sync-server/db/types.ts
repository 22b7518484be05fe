/**
 * The registry's database as the server sees it: exactly the part of better-sqlite3's synchronous API the
 * sync-server uses, so that better-sqlite3's `Database` is one implementation (assignable with no cast) and
 * `PgDb` (./pg.ts, PostgreSQL through pg-native) is the other. Every call is synchronous on both: a
 * transaction is atomic with respect to the event loop, as the server's group commit and its readers assume.
 */

export interface RunResult {
  /** Rows inserted, updated or deleted by the statement. */
  changes: number;
  /** SQLite: the rowid of the last insert. PostgreSQL: 0 (use `RETURNING` instead). */
  lastInsertRowid: number | bigint;
}

/**
 * A prepared statement: prepared once, run many times with positional `?` parameters (or one object for `@name`).
 * Values both drivers take: strings, numbers, bigints, null, Buffers (BLOB / bytea); booleans on PostgreSQL only.
 */
export interface Statement {
  run(...params: unknown[]): RunResult;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  iterate(...params: unknown[]): IterableIterator<unknown>;
  /** Return the first column's value instead of the row object (on get, all and iterate). */
  pluck(toggleState?: boolean): this;
}

/** `db.transaction(fn)`: a function that runs fn inside BEGIN … COMMIT (a SAVEPOINT when nested), rolled back on a throw. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the variance better-sqlite3's own typing uses; no any escapes
export type TxFn = (...params: any[]) => unknown;
type Args<F extends TxFn> = F extends (...args: infer A) => unknown ? A : never;

export interface Transaction<F extends TxFn> {
  (...params: Args<F>): ReturnType<F>;
}

export interface PragmaOptions {
  simple?: boolean | undefined;
}

export interface Db {
  /** Which SQL dialect the statements must be written in; absent on better-sqlite3 (SQLite). */
  readonly dialect?: 'postgres';
  /** SQLite: an in-memory database. Always false on PostgreSQL. */
  readonly memory: boolean;
  /** SQLite: the database file's path. PostgreSQL: the connection's target without its password. */
  readonly name: string;
  readonly open: boolean;
  readonly inTransaction: boolean;
  prepare(source: string): Statement;
  transaction<F extends TxFn>(fn: F): Transaction<F>;
  /** Run one or more statements separated by `;`, with no parameters. */
  exec(source: string): this;
  /** SQLite's PRAGMA. On PostgreSQL the tuning pragmas are accepted and do nothing (see ./pg.ts). */
  pragma(source: string, options?: PragmaOptions): unknown;
  close(): this;
}
