import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { pgError } from './pg.js';

/**
 * `COPY … FROM STDIN` into the registry on PostgreSQL (issue 16: big imports), over an asynchronous connection of its
 * own: PgDb (pg.ts) is synchronous, one blocking round trip per statement, and cannot stream. node-postgres (`pg`, pure
 * JavaScript) carries the connection and `pg-copy-streams` the COPY sub-protocol; the event loop stays free while
 * PostgreSQL takes the rows. The rows go in COPY's text format (`copyLine`). The caller holds the transaction
 * (`query('BEGIN')` … `query('COMMIT')`); a connection closed before its COMMIT (`close`, a crash) commits nothing.
 * Errors are RcErrors with db.* codes, as PgDb's (never a value of a row).
 */

/** A cell of a copied row: text, a number, or NULL. */
export type CopyCell = string | number | null;

/** Rows buffered before they are handed to the connection (one CopyData message). */
const CHUNK_BYTES = 64 * 1024;

/** One row in COPY's text format: tab-separated, `\N` for NULL, backslash escapes for `\`, tab, newline and CR. */
export function copyLine(cells: readonly CopyCell[]): string {
  let line = '';
  for (let i = 0; i < cells.length; i++) {
    const v = cells[i];
    if (i > 0) line += '\t';
    if (v === null || v === undefined) line += '\\N';
    else if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new RcError(ErrorCode.DbValueOutOfRange, 'a copied value is not a finite number');
      line += String(v);
    } else {
      if (v.includes('\0')) throw new RcError(ErrorCode.DbValueOutOfRange, 'PostgreSQL text cannot hold a NUL character');
      line += /[\\\t\n\r]/.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : v;
    }
  }
  return line + '\n';
}

/** A node-postgres error (a DatabaseError carries the SQLSTATE and names) as a coded RcError. */
function toRcError(e: unknown): RcError {
  if (e instanceof RcError) return e;
  const d = e as Partial<pg.DatabaseError>;
  const fields =
    typeof d.code === 'string' && /^[0-9A-Z]{5}$/.test(d.code)
      ? {
          sqlState: d.code,
          messagePrimary: d.message ?? '',
          ...(d.constraint ? { constraintName: d.constraint } : {}),
          ...(d.table ? { tableName: d.table } : {}),
          ...(d.column ? { columnName: d.column } : {}),
        }
      : null; // a socket error (ECONNREFUSED, ECONNRESET): unavailable
  return pgError(fields, e instanceof Error ? e.message : String(e), e);
}

/**
 * One `COPY table(columns) FROM STDIN` in flight: `write` rows (true when the buffer is full: `await drain()` then),
 * `end` to finish it (the rows PostgreSQL took), or close the connection to drop it. An error PostgreSQL answers while rows flow surfaces at
 * the next `drain` or `end`.
 */
export class CopyIn {
  /** Rows written so far. */
  rows = 0;
  private buf = '';
  private failed: RcError | null = null;
  private readonly stream: ReturnType<typeof copyStreams.from>;
  private readonly done: Promise<void>;

  constructor(client: pg.Client, table: string, columns: readonly string[]) {
    this.stream = client.query(copyStreams.from(`COPY ${table}(${columns.join(', ')}) FROM STDIN`));
    this.done = new Promise<void>((resolve, reject) => {
      this.stream.once('finish', () => resolve());
      this.stream.once('error', (e) => {
        this.failed ??= toRcError(e);
        reject(this.failed);
      });
    });
    this.done.catch(() => undefined); // awaited by end(); not an unhandled rejection meanwhile
  }

  /** Buffer one row; true when the buffer should be handed on now (`await drain()`). */
  write(cells: readonly CopyCell[]): boolean {
    this.buf += copyLine(cells);
    this.rows++;
    return this.buf.length >= CHUNK_BYTES;
  }

  /** Hand the buffered rows to the connection, and wait while the socket is full (the import slows to PostgreSQL's pace). */
  async drain(): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.buf.length === 0) return;
    const chunk = this.buf;
    this.buf = '';
    if (this.stream.write(chunk, 'utf8')) return;
    await Promise.race([new Promise<void>((r) => this.stream.once('drain', () => r())), this.done]);
    if (this.failed) throw this.failed;
  }

  /** The COPY finished: the number of rows PostgreSQL took (visible to the transaction, not committed). */
  async end(): Promise<number> {
    await this.drain();
    this.stream.end();
    await this.done;
    return this.stream.rowCount;
  }
}

export class PgCopyClient {
  private lost: RcError | null = null;
  private closed = false;

  private constructor(private readonly client: pg.Client) {
    // a connection lost while idle: the next call fails with it (an 'error' with no listener would end the process)
    client.on('error', (e) => (this.lost ??= toRcError(e)));
  }

  /** A new connection to the database at `url` (a postgres:// URL), with PgDb's session settings. */
  static async connect(url: string): Promise<PgCopyClient> {
    const client = new pg.Client({ connectionString: url, application_name: 'rc-import-copy' });
    try {
      await client.connect();
      await client.query("SET client_min_messages = warning; SET TIME ZONE 'UTC'; SET synchronous_commit = on");
    } catch (e) {
      await client.end().catch(() => undefined);
      const err = toRcError(e);
      throw new RcError(ErrorCode.DbUnavailable, `cannot open a COPY connection to PostgreSQL: ${err.message}`, err.context, { cause: e });
    }
    return new PgCopyClient(client);
  }

  /** One statement with `$n` parameters; the rows it changed. */
  async query(sql: string, params: readonly unknown[] = []): Promise<number> {
    if (this.lost) throw this.lost;
    try {
      return (await this.client.query(sql, [...params])).rowCount ?? 0;
    } catch (e) {
      throw toRcError(e);
    }
  }

  /** Start a COPY of rows into `table(columns)` (both constant names, never input) in the open transaction. */
  copyIn(table: string, columns: readonly string[]): CopyIn {
    if (this.lost) throw this.lost;
    return new CopyIn(this.client, table, columns);
  }

  /** Close the connection: whatever it had not committed is rolled back by PostgreSQL. Resolves once the socket closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.end().catch(() => undefined);
  }
}
