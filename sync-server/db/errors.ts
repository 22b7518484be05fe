import { ErrorCode, RcError } from '../../protocol/errors.js';

/**
 * A database error as one of the db.* codes, whichever database threw it: PgDb throws RcErrors already;
 * better-sqlite3 throws SqliteErrors (code SQLITE_CONSTRAINT_UNIQUE, …). For callers that must tell a
 * constraint violation (a duplicate) from any other failure on both databases. Anything else: undefined.
 */
export function dbError(e: unknown): RcError | undefined {
  if (e instanceof RcError) return e.code.startsWith('db.') ? e : undefined;
  if (!(e instanceof Error) || e.name !== 'SqliteError') return undefined;
  const code = (e as Error & { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  if (code.startsWith('SQLITE_CONSTRAINT')) return new RcError(ErrorCode.DbConstraint, `SQLite refused the write (${code})`, { sqlite: code }, { cause: e });
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_IOERR' || code.startsWith('SQLITE_IOERR_'))
    return new RcError(ErrorCode.DbUnavailable, `SQLite could not read or write the registry (${code})`, { sqlite: code }, { cause: e });
  return new RcError(ErrorCode.DbQueryFailed, `SQLite refused the statement (${code})`, { sqlite: code }, { cause: e });
}
