import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openRegistry } from '../../sync-server/registry.js';

/**
 * console_status_log and holder_card_history were ordered by SQLite's implicit rowid; they have an explicit
 * `id INTEGER PRIMARY KEY` now (the same statements run on PostgreSQL, where it is an identity). A registry made
 * before gets the column at open, each row keeping its rowid as id, and the cards triggers that write the history
 * still work after the rebuild.
 */
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function oldRegistry(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rc-explicit-id-'));
  dirs.push(dir);
  const db = openRegistry(dir);
  // the tables as the code before this change made them, with rows whose rowids are not 1..n
  db.exec(`
    DROP TABLE schema_migrations;
    DROP TRIGGER cards_history_replaced; DROP TRIGGER cards_history_removed;
    DROP TABLE holder_card_history; DROP TABLE console_status_log;
    CREATE TABLE holder_card_history(person_id TEXT NOT NULL, token TEXT NOT NULL, masked TEXT, until_ms INTEGER NOT NULL);
    CREATE TABLE console_status_log(device TEXT NOT NULL, at TEXT NOT NULL, online INTEGER NOT NULL, backlog INTEGER NOT NULL, lists TEXT NOT NULL, reader TEXT);
    INSERT INTO holder_card_history(rowid, person_id, token, masked, until_ms) VALUES (7, 'p1', 'tok-a', '220000******0001', 1000), (3, 'p1', 'tok-b', NULL, 1000);
    INSERT INTO console_status_log(rowid, device, at, online, backlog, lists, reader) VALUES (5, 'bus-1', '2026-12-01T10:00:00Z', 1, 3, '{}', NULL), (9, 'bus-1', '2026-12-01T10:00:00Z', 1, 4, '{}', NULL);
  `);
  db.close();
  return dir;
}

const columns = (db: Database.Database, table: string) => (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);

describe('explicit ids of the tables ordered by insertion', () => {
  it('a registry made before gets id = its rowid, once; the order and the history triggers stay', () => {
    const dir = oldRegistry();
    for (let open = 0; open < 2; open++) {
      const db = openRegistry(dir);
      expect(columns(db, 'holder_card_history')).toEqual(['id', 'person_id', 'token', 'masked', 'until_ms']);
      expect(columns(db, 'console_status_log')).toEqual(['id', 'device', 'at', 'online', 'backlog', 'lists', 'reader']);
      expect(db.prepare('SELECT id, token FROM holder_card_history ORDER BY until_ms, id').all()).toEqual([
        { id: 3, token: 'tok-b' },
        { id: 7, token: 'tok-a' },
      ]);
      expect(db.prepare('SELECT id, backlog FROM console_status_log ORDER BY at DESC, id DESC').all()).toEqual([
        { id: 9, backlog: 4 },
        { id: 5, backlog: 3 },
      ]);
      db.close();
    }
    const db = openRegistry(dir);
    // the triggers were made again on the rebuilt table: a card replaced is recorded after the rows there were
    db.prepare("INSERT INTO cards(person_id, token, key_version, expiry, updated_at) VALUES ('p2', 'tok-c', 1, '2030-01', 'x')").run();
    db.prepare("UPDATE cards SET token = 'tok-d' WHERE person_id = 'p2'").run();
    expect(db.prepare("SELECT id, token FROM holder_card_history WHERE person_id = 'p2'").all()).toEqual([{ id: 8, token: 'tok-c' }]);
    db.close();
  });

  it('a new registry has the column from the start', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-explicit-id-'));
    dirs.push(dir);
    const db = openRegistry(dir);
    expect(columns(db, 'holder_card_history')[0]).toBe('id');
    expect(columns(db, 'console_status_log')[0]).toBe('id');
    db.close();
  });
});
