import type { Db } from '../registry.js';

/**
 * Give a SQLite table whose rows are ordered by insertion an explicit `id INTEGER PRIMARY KEY` in place of the
 * implicit rowid (an alias of it: the values, so the order, stay), so the same statements run on PostgreSQL, where
 * the table has an identity column of that name. A registry made before has the table without it: the table is
 * rebuilt once, its rows keeping their rowid as id; a table that has the column (or does not exist yet) is left
 * alone, so this runs on every open. `columns` is the table's other columns as in its CREATE TABLE; `triggers`
 * are dropped first (they name the table; their owner creates them again after this), since SQLite's RENAME
 * refuses a schema whose triggers name a table that is gone for the moment.
 */
export function ensureExplicitId(db: Db, table: string, columns: string, triggers: readonly string[] = []): void {
  const cols = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
  if (cols.length === 0 || cols.some((c) => c.name === 'id')) return;
  const names = cols.map((c) => c.name).join(', ');
  db.transaction(() => {
    for (const t of triggers) db.exec(`DROP TRIGGER IF EXISTS ${t}`);
    db.exec(`CREATE TABLE ${table}_with_id(id INTEGER PRIMARY KEY, ${columns})`);
    db.exec(`INSERT INTO ${table}_with_id(id, ${names}) SELECT rowid, ${names} FROM ${table} ORDER BY rowid`);
    db.exec(`DROP TABLE ${table}`);
    db.exec(`ALTER TABLE ${table}_with_id RENAME TO ${table}`);
  })();
}
