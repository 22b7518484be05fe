import Database from 'better-sqlite3';

/**
 * Test-only: read a store file's raw rows through a separate read-only
 * connection (the Store keeps its database private). Works while the Store has
 * the file open (WAL: the reader sees everything committed).
 */
export function readRaw<T>(path: string, read: (db: Database.Database) => T): T {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}
