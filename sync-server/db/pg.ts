import { createRequire } from 'node:module';
import type Client from 'pg-native';
import pgTypes from 'pg-types';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { toPgPlaceholders, type PgSql } from './placeholders.js';
import type { Db, PragmaOptions, RunResult, Statement, Transaction, TxFn } from './types.js';

/**
 * The registry on PostgreSQL, synchronously: `Db` over pg-native (libpq), one connection, every call one blocking
 * round trip, so a transaction stays atomic with respect to the event loop exactly as on better-sqlite3 (docs/postgres.md
 * has the design and its measured cost).
 *
 *  - SQL keeps SQLite's `?` (and better-sqlite3's `@name` with one object argument); they become `$1…$n`, outside
 *    string literals, quoted identifiers, dollar quotes and comments (placeholders.ts).
 *  - `prepare` prepares on the server once per distinct SQL text (the cache lives as long as the connection).
 *  - Values go as text: numbers, bigints, strings, null, booleans as 1/0 (SQLite's integers), Buffers as bytea.
 *  - Values come back as on SQLite: int2/4/8 and numeric as numbers (beyond 2^53 a coded error, never a rounded
 *    value), bytea as Buffer, boolean as 1/0, timestamps and dates as their text.
 *  - `iterate()` fetches the whole result, then iterates it (no server-side cursor: a cursor needs a transaction).
 *  - `get()` fetches the whole result and returns its first row: write `LIMIT 1` where many rows can match.
 *  - `transaction(fn)`: BEGIN … COMMIT, a SAVEPOINT when nested (as better-sqlite3), rolled back on a throw. A failed
 *    statement aborts a PostgreSQL transaction (SQLite keeps it): a transaction whose statement failed and whose
 *    function caught that error is rolled back at its end and reports `db.query-failed`, never committed half-done.
 *  - Errors are RcErrors with db.* codes and the SQLSTATE, constraint, table and column; never a parameter value.
 */

/** SQLite pragmas that tune SQLite's own storage: accepted and ignored on PostgreSQL, whose server configuration does that. */
export const PG_IGNORED_PRAGMAS: Readonly<Record<string, number | string>> = {
  journal_mode: 'wal',
  synchronous: 2, // FULL: PostgreSQL commits are durable (fsync on)
  cache_size: -2000,
  temp_store: 2,
  busy_timeout: 5000,
  mmap_size: 0,
  wal_autocheckpoint: 1000,
  optimize: 0,
};

const OID = { bool: 16, int8: 20, int2: 21, int4: 23, numeric: 1700, date: 1082, timestamp: 1114, timestamptz: 1184 } as const;

function safeNumber(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || (Number.isInteger(n) && !Number.isSafeInteger(n)))
    throw new RcError(ErrorCode.DbValueOutOfRange, 'a number read from PostgreSQL does not fit a JavaScript number exactly (beyond 2^53)');
  return n;
}

const parsers: Record<number, (text: string) => unknown> = {
  [OID.int8]: safeNumber,
  [OID.numeric]: safeNumber,
  [OID.bool]: (t) => (t === 't' ? 1 : 0),
  [OID.date]: (t) => t,
  [OID.timestamp]: (t) => t,
  [OID.timestamptz]: (t) => t,
};
/** pg-native's `types` option: our parsers first, pg-types' own for the rest (int2/4, floats, bytea → Buffer, text). */
const types = { getTypeParser: (oid: number) => parsers[oid] ?? pgTypes.getTypeParser(oid, 'text') };

type Param = string | null;

function toParam(v: unknown): Param {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
      if (v.includes('\0')) throw new RcError(ErrorCode.DbValueOutOfRange, 'PostgreSQL text cannot hold a NUL character');
      return v;
    case 'number':
      if (!Number.isFinite(v)) throw new RcError(ErrorCode.DbValueOutOfRange, 'a parameter is not a finite number');
      return String(v);
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? '1' : '0';
    default:
      if (v instanceof Uint8Array) return `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
      throw new RcError(ErrorCode.DbValueOutOfRange, `a parameter of type ${typeof v} cannot be bound (numbers, bigints, strings, booleans, Buffers, null)`);
  }
}

function isNamedArgs(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

interface ErrorFields {
  sqlState?: string;
  messagePrimary?: string;
  constraintName?: string;
  tableName?: string;
  columnName?: string;
}

/** The libpq error of the last call as a coded RcError. Class 22 (data exceptions) messages can quote a value: left out. Also pg-copy.ts's. */
export function pgError(fields: ErrorFields | null | undefined, fallback: string, cause: unknown): RcError {
  const state = fields?.sqlState ?? '';
  const where: Record<string, unknown> = { sqlstate: state || undefined };
  if (fields?.constraintName) where.constraint = fields.constraintName;
  if (fields?.tableName) where.table = fields.tableName;
  if (fields?.columnName) where.column = fields.columnName;
  const primary = fields?.messagePrimary ?? '';
  if (state === '' || state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03')
    return new RcError(ErrorCode.DbUnavailable, `PostgreSQL is unavailable: ${firstLine(primary || fallback)}`, where, { cause });
  if (state.startsWith('23')) return new RcError(ErrorCode.DbConstraint, `PostgreSQL refused the write: ${primary}`, where, { cause });
  if (state === '22003') return new RcError(ErrorCode.DbValueOutOfRange, 'a value is out of range for its column', where, { cause });
  if (state.startsWith('22')) return new RcError(ErrorCode.DbQueryFailed, `PostgreSQL refused a value (SQLSTATE ${state})`, where, { cause });
  return new RcError(ErrorCode.DbQueryFailed, `PostgreSQL refused the statement: ${primary} (SQLSTATE ${state})`, where, { cause });
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

interface Prepared {
  name: string;
  /** The statement as the caller wrote it (SQLite's placeholders). */
  source: string;
  sql: PgSql;
}

class PgStatement implements Statement {
  private plucking = false;
  constructor(
    private readonly db: PgDb,
    private readonly p: Prepared,
  ) {}

  pluck(toggleState = true): this {
    this.plucking = toggleState;
    return this;
  }

  run(...params: unknown[]): RunResult {
    this.db.execute(this.p, params);
    return this.db.lastRunResult();
  }

  get(...params: unknown[]): unknown {
    const rows = this.db.execute(this.p, params);
    return rows.length === 0 ? undefined : this.shape(rows[0]!);
  }

  all(...params: unknown[]): unknown[] {
    const rows = this.db.execute(this.p, params);
    return this.plucking ? rows.map((r) => this.shape(r)) : rows;
  }

  iterate(...params: unknown[]): IterableIterator<unknown> {
    return this.all(...params)[Symbol.iterator]();
  }

  private shape(row: Record<string, unknown>): unknown {
    return this.plucking ? Object.values(row)[0] : row;
  }
}

export interface PgDbOptions {
  /** A libpq connection string or postgres:// URL. */
  url: string;
}

/** Each open PgDb's connection URL, password included (kept off the object, so no log or error serialises it). */
const urls = new WeakMap<PgDb, string>();

/** The URL a PgDb connected to, for a second connection to the same database (pg-copy.ts: the imports' COPY). */
export function connectionUrl(db: PgDb): string {
  const url = urls.get(db);
  if (url === undefined) throw new RcError(ErrorCode.DbUnavailable, 'the database connection is closed');
  return url;
}

export class PgDb implements Db {
  readonly dialect = 'postgres' as const;
  readonly memory = false;
  readonly name: string;
  private client: Client;
  private isOpen = true;
  private readonly cache = new Map<string, Prepared>();
  private depth = 0;

  constructor(o: PgDbOptions) {
    this.name = redactUrl(o.url);
    this.client = new (loadPgNative())({ types });
    try {
      this.client.connectSync(o.url);
    } catch (e) {
      throw new RcError(ErrorCode.DbUnavailable, `cannot connect to PostgreSQL at ${this.name}: ${firstLine(e instanceof Error ? e.message : String(e))}`, {
        database: this.name,
      });
    }
    // notices (CREATE … IF NOT EXISTS, "skipping") would go to stderr; the session's clock is UTC like the server's ISO times;
    // a COMMIT is durable when it returns whatever the server's default (ingest sends journal acks right after it)
    this.raw("SET client_min_messages = warning; SET TIME ZONE 'UTC'; SET synchronous_commit = on");
    urls.set(this, o.url);
  }

  get open(): boolean {
    return this.isOpen;
  }

  get inTransaction(): boolean {
    const status = this.isOpen ? this.client.pq.transactionStatus() : 0;
    return status === 2 || status === 3; // in a transaction, or in a failed one (libpq's PQTRANS_INTRANS, PQTRANS_INERROR)
  }

  prepare(source: string): Statement {
    this.checkOpen();
    let p = this.cache.get(source);
    if (!p) {
      const sql = toPgPlaceholders(source);
      const name = `rc_${this.cache.size + 1}`;
      try {
        this.client.prepareSync(name, sql.text, sql.count);
      } catch (e) {
        throw this.error(e, source);
      }
      p = { name, source, sql };
      this.cache.set(source, p);
    }
    return new PgStatement(this, p);
  }

  exec(source: string): this {
    this.raw(source);
    return this;
  }

  transaction<F extends TxFn>(fn: F): Transaction<F> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the returned function is called with the caller's `this`
    const db = this;
    const run = function (this: unknown, ...args: unknown[]): unknown {
      return db.inTransaction ? db.nested(() => fn.apply(this, args)) : db.outer(() => fn.apply(this, args));
    };
    return run as Transaction<F>;
  }

  pragma(source: string, options?: PragmaOptions): unknown {
    const m = /^\s*([a-z_]+)\s*(?:=\s*(.+?))?\s*;?\s*$/i.exec(source);
    const name = m?.[1]?.toLowerCase() ?? '';
    if (!(name in PG_IGNORED_PRAGMAS))
      throw new RcError(ErrorCode.DbPragmaUnsupported, `PRAGMA ${name || source.trim().slice(0, 40)} has no PostgreSQL equivalent`, { pragma: name });
    if (m?.[2] !== undefined) return [];
    const value = PG_IGNORED_PRAGMAS[name]!;
    return options?.simple ? value : [{ [name]: value }];
  }

  close(): this {
    if (this.isOpen) {
      this.isOpen = false;
      this.client.end();
      keepUntilClosed(this.client);
    }
    return this;
  }

  /** Run a prepared statement with the caller's arguments (positional, or one object for `@name`). */
  execute(p: Prepared, args: unknown[]): Record<string, unknown>[] {
    this.checkOpen();
    const values = bindValues(p.sql, args);
    try {
      return this.client.executeSync(p.name, values) as Record<string, unknown>[];
    } catch (e) {
      throw this.error(e, p.source);
    }
  }

  /** changes from the command tag of the statement just run; lastInsertRowid reads the session's lastval() when asked for. */
  lastRunResult(): RunResult {
    const changes = Number.parseInt(this.client.pq.cmdTuples(), 10) || 0;
    const lastval = () => this.lastval();
    return {
      changes,
      get lastInsertRowid(): number {
        return lastval();
      },
    };
  }

  private lastval(): number {
    // lastval() fails when the session used no sequence: inside a transaction a savepoint keeps that from aborting it
    const inTx = this.inTransaction;
    if (inTx) this.raw('SAVEPOINT rc_lastval');
    try {
      const rows = this.client.querySync('SELECT lastval() AS v') as { v: number }[];
      if (inTx) this.raw('RELEASE SAVEPOINT rc_lastval');
      return rows[0]?.v ?? 0;
    } catch {
      if (inTx) this.raw('ROLLBACK TO SAVEPOINT rc_lastval; RELEASE SAVEPOINT rc_lastval');
      return 0;
    }
  }

  private outer(fn: () => unknown): unknown {
    this.raw('BEGIN');
    let result: unknown;
    try {
      result = fn();
      if (result instanceof Promise) throw new TypeError('a transaction function cannot return a promise');
    } catch (e) {
      this.rollbackQuietly('ROLLBACK');
      throw e;
    }
    if (this.client.pq.transactionStatus() === 3) {
      this.raw('ROLLBACK');
      throw new RcError(ErrorCode.DbQueryFailed, 'a statement of the transaction failed (and its error was caught): the transaction was rolled back', {
        sqlstate: '25P02',
      });
    }
    this.raw('COMMIT');
    return result;
  }

  private nested(fn: () => unknown): unknown {
    const sp = `rc_sp${++this.depth}`;
    this.raw(`SAVEPOINT ${sp}`);
    try {
      const result = fn();
      if (result instanceof Promise) throw new TypeError('a transaction function cannot return a promise');
      this.raw(`RELEASE SAVEPOINT ${sp}`);
      return result;
    } catch (e) {
      this.rollbackQuietly(`ROLLBACK TO SAVEPOINT ${sp}; RELEASE SAVEPOINT ${sp}`);
      throw e;
    } finally {
      this.depth--;
    }
  }

  /** Undo after a throw; the caller rethrows the throw, which says more than a failed rollback (a lost connection). */
  private rollbackQuietly(sql: string): void {
    if (!this.inTransaction) return;
    try {
      this.raw(sql);
    } catch {
      // the original error is rethrown; a dead connection rolled the transaction back on the server anyway
    }
  }

  private raw(sql: string): void {
    this.checkOpen();
    try {
      this.client.querySync(sql);
    } catch (e) {
      throw this.error(e, sql);
    }
  }

  /** The statement's own text goes into a query-failed context (its start: parameters are never part of it). */
  private error(e: unknown, sql: string): RcError {
    if (e instanceof RcError) return e;
    const fields = this.client.pq.resultErrorFields() as ErrorFields | null;
    const err = pgError(fields, e instanceof Error ? e.message : String(e), e);
    if (err.code === ErrorCode.DbQueryFailed && err.context) err.context.statement = sql.replace(/\s+/g, ' ').trim().slice(0, 160);
    return err;
  }

  private checkOpen(): void {
    if (!this.isOpen) throw new RcError(ErrorCode.DbUnavailable, 'the database connection is closed');
  }
}

/**
 * pg-native, loaded when PostgreSQL is first used: its native binding needs libpq5, which a SQLite-only
 * installation (the default) need not have.
 */
function loadPgNative(): typeof Client {
  try {
    return createRequire(import.meta.url)('pg-native') as typeof Client;
  } catch (e) {
    throw new RcError(
      ErrorCode.DbUnavailable,
      `PostgreSQL's client library cannot load (pg-native, libpq5): ${firstLine(e instanceof Error ? e.message : String(e))}`,
    );
  }
}

/**
 * libpq's binding closes its socket watcher with uv_close and no callback: were the client collected before libuv
 * finished that close (the end of the loop's iteration), libuv would read freed memory (an assertion in
 * uv__finish_close aborts the process). An ended client is therefore held for a second, well past that.
 */
const closing = new Set<Client>();
function keepUntilClosed(c: Client): void {
  closing.add(c);
  setTimeout(() => closing.delete(c), 1000).unref();
}

function bindValues(sql: PgSql, args: unknown[]): Param[] {
  if (sql.names.length > 0) {
    const [obj] = args;
    if (args.length !== 1 || !isNamedArgs(obj))
      throw new RcError(ErrorCode.DbQueryFailed, 'a statement with @name parameters takes one object of values', { expected: sql.names.length });
    return sql.names.map((n) => {
      if (!(n in obj)) throw new RcError(ErrorCode.DbQueryFailed, `missing named parameter @${n}`, { parameter: n });
      return toParam(obj[n]);
    });
  }
  const flat = args.flatMap((a) => (Array.isArray(a) ? (a as unknown[]) : [a]));
  if (flat.length !== sql.count)
    throw new RcError(ErrorCode.DbQueryFailed, `the statement takes ${sql.count} parameters, ${flat.length} were given`, {
      expected: sql.count,
      given: flat.length,
    });
  return flat.map(toParam);
}

/** The URL without its password, for messages and `db.name`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/password=\S+/gi, 'password=***');
  }
}
