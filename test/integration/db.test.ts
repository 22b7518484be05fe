import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRcError } from '../../protocol/errors.js';
import { dbError } from '../../sync-server/db/errors.js';
import { appliedMigrations, migrateSchema, SCHEMA_VERSION } from '../../sync-server/db/migrations.js';
import { openDatabase, parseDatabaseSpec } from '../../sync-server/db/open.js';
import { PgDb } from '../../sync-server/db/pg.js';
import type { Db } from '../../sync-server/db/types.js';
import { migrateLegacyRegistry } from '../../sync-server/db/migrations/legacy.js';
import { openSqliteRegistry } from '../../sync-server/registry.js';
import { requirePostgres, startPostgres, type PgServer } from '../support/rig/postgres.js';
import { PROJECT_ROOT } from '../support/rig/vcards.js';

/**
 * The registry's database layer (sync-server/db/) on both databases, one suite over each: better-sqlite3 on a
 * real SQLite file and PgDb on a real PostgreSQL 15 (test/support/rig/postgres.ts). Outside CI a machine without
 * PostgreSQL runs the SQLite half only, saying so; in CI a missing PostgreSQL fails.
 */
const havePg = requirePostgres('db.test');

interface Rig {
  name: 'sqlite' | 'postgres';
  /** A new empty database. */
  fresh(): Db;
  /** Open the database `fresh()` made last, again (another connection). */
  reopen(): Db;
  /** DDL in this rig's dialect. */
  ddl(d: { sqlite: string; postgres: string }): string;
}

const dirs: string[] = [];
let pg: PgServer | null = null;
const opened: Db[] = [];
const track = (db: Db) => (opened.push(db), db);

beforeAll(async () => {
  if (havePg) pg = await startPostgres();
}, 60_000);
afterAll(async () => {
  for (const db of opened) db.close();
  await pg?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'rc-db-'));
  dirs.push(d);
  return d;
}

const sqliteRig = (): Rig => {
  let file = '';
  return {
    name: 'sqlite',
    fresh: () => track(new Database((file = join(tempDir(), 'registry.sqlite')))),
    reopen: () => track(new Database(file)),
    ddl: (d) => d.sqlite,
  };
};

const pgRig = (): Rig => {
  let url = '';
  return {
    name: 'postgres',
    fresh: () => track(new PgDb({ url: (url = pg!.createDatabase('rc_db')) })),
    reopen: () => track(new PgDb({ url })),
    ddl: (d) => d.postgres,
  };
};

/** The code of what `fn` threw, as db.* (dbError maps SQLite's errors; PgDb throws coded ones). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return dbError(e)?.code ?? `not a db error: ${String(e)}`;
  }
  return 'nothing thrown';
}

function dbSuite(rig: Rig) {
  const T = {
    sqlite: 'CREATE TABLE t(k TEXT PRIMARY KEY, ms INTEGER, n INTEGER, b BLOB, s TEXT)',
    postgres: 'CREATE TABLE t(k text PRIMARY KEY, ms bigint, n bigint, b bytea, s text)',
  };
  const withT = () => rig.fresh().exec(rig.ddl(T));

  it('? placeholders are numbered outside string literals, quoted identifiers and comments', () => {
    const db = withT();
    const row = db.prepare(`SELECT ? AS a, '?' AS "b?", /* ? */ CAST(? AS INTEGER) AS c -- ?\n`).get('x', 2);
    expect(row).toEqual({ a: 'x', 'b?': '?', c: 2 });
    db.prepare('INSERT INTO t(k, s) VALUES (@k, @s)').run({ k: 'named', s: "it's @s" });
    expect(db.prepare("SELECT s FROM t WHERE k = 'named'").pluck().get()).toBe("it's @s");
  });

  it('values round-trip: int8 ms times and sequences, kopecks, bytea, null, text', () => {
    const db = withT();
    const ms = 1_764_576_000_123;
    const bytes = Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]);
    db.prepare('INSERT INTO t(k, ms, n, b, s) VALUES (?, ?, ?, ?, ?)').run('a', ms, 2 ** 40 + 7, bytes, 'Элиста «кавычки» \' "');
    db.prepare('INSERT INTO t(k, ms, n, b, s) VALUES (?, ?, ?, ?, ?)').run('b', null, -3500, Buffer.alloc(0), null);
    const a = db.prepare('SELECT ms, n, b, s FROM t WHERE k = ?').get('a') as { ms: number; n: number; b: Buffer; s: string };
    expect(a).toEqual({ ms, n: 2 ** 40 + 7, b: bytes, s: 'Элиста «кавычки» \' "' });
    expect(Buffer.isBuffer(a.b)).toBe(true);
    expect(db.prepare('SELECT ms, n, b, s FROM t WHERE k = ?').get('b')).toEqual({ ms: null, n: -3500, b: Buffer.alloc(0), s: null });
    // aggregates of int8 (PostgreSQL: numeric) and count(*) (int8) come back as numbers
    expect(db.prepare('SELECT sum(n) AS total, count(*) AS rows FROM t').get()).toEqual({ total: 2 ** 40 + 7 - 3500, rows: 2 });
    expect(
      db
        .prepare('SELECT ms FROM t WHERE ms > ?')
        .pluck()
        .all(ms - 1),
    ).toEqual([ms]);
    expect(
      db
        .prepare('SELECT k FROM t WHERE n = ?')
        .pluck()
        .get(2n ** 40n + 7n),
    ).toBe('a'); // a bigint parameter
  });

  it('run() counts the rows changed; get() of nothing is undefined; iterate() and pluck() as better-sqlite3', () => {
    const db = withT();
    const ins = db.prepare('INSERT INTO t(k, n) VALUES (?, ?)');
    for (const [k, n] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ] as const)
      expect(ins.run(k, n).changes).toBe(1);
    expect(db.prepare('UPDATE t SET n = n + 10 WHERE n >= ?').run(2).changes).toBe(2);
    expect(db.prepare('UPDATE t SET n = 0 WHERE k = ?').run('none').changes).toBe(0);
    expect(db.prepare('SELECT n FROM t WHERE k = ?').get('none')).toBeUndefined();
    expect([...db.prepare('SELECT k, n FROM t ORDER BY k').iterate()]).toEqual([
      { k: 'a', n: 1 },
      { k: 'b', n: 12 },
      { k: 'c', n: 13 },
    ]);
    expect(db.prepare('SELECT k FROM t ORDER BY k DESC').pluck().all()).toEqual(['c', 'b', 'a']);
    expect(db.prepare('DELETE FROM t WHERE n > ?').run(5).changes).toBe(2);
  });

  it('a nested transaction that throws rolls back to its savepoint; the outer one commits the rest', () => {
    const db = withT();
    const ins = db.prepare('INSERT INTO t(k) VALUES (?)');
    const inner = db.transaction((k: string) => {
      ins.run(k);
      throw new Error('inner fails');
    });
    const outer = db.transaction(() => {
      expect(db.inTransaction).toBe(true);
      ins.run('outer-1');
      expect(() => inner('inner')).toThrow('inner fails');
      ins.run('outer-2');
      return 'done';
    });
    expect(outer()).toBe('done');
    expect(db.inTransaction).toBe(false);
    expect(db.prepare('SELECT k FROM t ORDER BY k').pluck().all()).toEqual(['outer-1', 'outer-2']);
  });

  it('a thrown error rolls the whole transaction back', () => {
    const db = withT();
    const ins = db.prepare('INSERT INTO t(k) VALUES (?)');
    expect(() =>
      db.transaction(() => {
        ins.run('x');
        db.transaction(() => ins.run('y'))();
        throw new Error('boom');
      })(),
    ).toThrow('boom');
    expect(db.inTransaction).toBe(false);
    expect(db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(0);
  });

  it('a unique violation is db.constraint and stores nothing', () => {
    const db = withT();
    db.prepare('INSERT INTO t(k, s) VALUES (?, ?)').run('dup', 'first');
    expect(codeOf(() => db.prepare('INSERT INTO t(k, s) VALUES (?, ?)').run('dup', 'second'))).toBe('db.constraint');
    expect(
      codeOf(() =>
        db.transaction(() => {
          db.prepare('INSERT INTO t(k, s) VALUES (?, ?)').run('new', 'x');
          db.prepare('INSERT INTO t(k, s) VALUES (?, ?)').run('dup', 'third');
        })(),
      ),
    ).toBe('db.constraint');
    expect(db.prepare('SELECT k, s FROM t').all()).toEqual([{ k: 'dup', s: 'first' }]);
  });

  it('the tuning pragmas are accepted', () => {
    const db = rig.fresh();
    expect(() => db.pragma('synchronous = FULL')).not.toThrow();
    expect(typeof db.pragma('synchronous', { simple: true })).toBe('number');
    expect(() => db.pragma('busy_timeout = 5000')).not.toThrow();
  });

  describe('schema migrations', () => {
    it('from empty: the migrations make the registry, each recorded in schema_migrations; opening again applies nothing', () => {
      const db = rig.fresh();
      const first = migrateSchema(db);
      expect(first).toMatchObject({ from: 0, to: SCHEMA_VERSION, applied: [1, 2], recognised: false });
      expect(appliedMigrations(db).map((m) => [m.version, m.name])).toEqual([
        [1, 'registry'],
        [2, 'explicit-ids'],
      ]);
      expect(db.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe('3');
      const again = rig.reopen();
      expect(migrateSchema(again)).toMatchObject({ from: 2, applied: [], recognised: false });
      expect(appliedMigrations(again)).toHaveLength(2);
    });

    it("the registry's rules hold: the audit log is append-only, a replaced card goes to the holder's history", () => {
      const db = rig.fresh();
      migrateSchema(db);
      db.prepare("INSERT INTO audit(time, who, role, source, action, detail, result) VALUES (?, 'admin', 'admin', 'cli', 'x', '{}', 'ok')").run(
        '2026-12-01T00:00:00Z',
      );
      expect(codeOf(() => db.prepare("UPDATE audit SET who = 'someone else'").run())).toBe('db.constraint');
      expect(codeOf(() => db.prepare('DELETE FROM audit').run())).toBe('db.constraint');
      expect(db.prepare('SELECT who FROM audit').pluck().all()).toEqual(['admin']);
      const t0 = Date.now();
      db.prepare("INSERT INTO cards(person_id, token, key_version, expiry, updated_at) VALUES ('p', 'tok-1', 1, '2030-01', 'now')").run();
      db.prepare("INSERT INTO holder_cards(person_id, masked, connected_at, via, token) VALUES ('p', '220000******0001', 'now', 'cabinet', 'tok-1')").run();
      db.prepare("UPDATE cards SET token = 'tok-2' WHERE person_id = 'p'").run();
      db.prepare("DELETE FROM cards WHERE person_id = 'p'").run();
      const hist = db.prepare('SELECT token, masked, until_ms FROM holder_card_history ORDER BY until_ms, token').all() as {
        token: string;
        masked: string | null;
        until_ms: number;
      }[];
      expect(hist.map((h) => [h.token, h.masked])).toEqual([
        ['tok-1', '220000******0001'],
        ['tok-2', null],
      ]);
      for (const h of hist) expect(Math.abs(h.until_ms - t0)).toBeLessThan(60_000);
    });
  });
}

describe('sync-server/db on SQLite', () => dbSuite(sqliteRig()));
describe.skipIf(!havePg)('sync-server/db on PostgreSQL 15', () => {
  dbSuite(pgRig());

  it('booleans bind as 1/0 and read back as 1/0, like SQLite integers', () => {
    const db = pgRig().fresh().exec('CREATE TABLE f(i bigint, b boolean)');
    db.prepare('INSERT INTO f(i, b) VALUES (?, ?)').run(true, false);
    expect(db.prepare('SELECT i, b, i = 1 AS eq FROM f').get()).toEqual({ i: 1, b: 0, eq: 1 });
  });

  it('an int8 beyond 2^53 is db.value-out-of-range, never a rounded number', () => {
    const db = pgRig().fresh();
    expect(codeOf(() => db.prepare('SELECT 9007199254740993::bigint AS v').get())).toBe('db.value-out-of-range');
    expect(db.prepare('SELECT 9007199254740991::bigint AS v').pluck().get()).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('an error caught inside a transaction does not commit it half-done (PostgreSQL aborts the transaction)', () => {
    const db = pgRig().fresh().exec('CREATE TABLE u(k text PRIMARY KEY)');
    db.prepare("INSERT INTO u VALUES ('a')").run();
    const caught = () =>
      db.transaction(() => {
        db.prepare("INSERT INTO u VALUES ('b')").run();
        try {
          db.prepare("INSERT INTO u VALUES ('a')").run();
        } catch {
          // swallowed: on SQLite the transaction would go on; on PostgreSQL it is aborted
        }
      })();
    expect(codeOf(caught)).toBe('db.query-failed');
    expect(db.prepare('SELECT k FROM u').pluck().all()).toEqual(['a']);
  });

  it('a SQLite pragma without a PostgreSQL meaning is db.pragma-unsupported; no parameter value reaches a message', () => {
    const db = pgRig().fresh().exec('CREATE TABLE v(n bigint)');
    expect(codeOf(() => db.pragma('table_info(cards)'))).toBe('db.pragma-unsupported');
    let message = '';
    try {
      db.prepare('INSERT INTO v(n) VALUES (?)').run('tok-secret-value');
    } catch (e) {
      expect(isRcError(e, 'db.query-failed')).toBe(true);
      message = JSON.stringify(e) + String((e as Error).message);
    }
    expect(message).not.toBe('');
    expect(message).not.toContain('tok-secret-value');
  });

  it('the migrations make the same tables and columns on both databases', () => {
    const lite = new Database(':memory:');
    migrateSchema(lite);
    const db = pgRig().fresh();
    migrateSchema(db);
    const liteCols = new Set<string>();
    for (const t of lite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all() as string[])
      for (const c of lite.prepare(`PRAGMA table_info(${t})`).all() as { name: string }[]) liteCols.add(`${t}.${c.name}`);
    const pgCols = new Set(
      db.prepare("SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = current_schema()").pluck().all() as string[],
    );
    lite.close();
    expect([...pgCols].filter((c) => !liteCols.has(c)).sort()).toEqual([]);
    expect([...liteCols].filter((c) => !pgCols.has(c))).toEqual([]);
  });

  it('--database postgres://… opens PostgreSQL and migrates it; a bad value is db.bad-spec', () => {
    const url = pg!.createDatabase('rc_open');
    const spec = parseDatabaseSpec(url, '/nonexistent');
    expect(spec).toEqual({ kind: 'postgres', url });
    const { db, migrated } = openDatabase(spec);
    track(db);
    expect(migrated?.applied).toEqual([1, 2]);
    expect(db.dialect).toBe('postgres');
    expect(codeOf(() => parseDatabaseSpec('mysql://x/y', '/d'))).toBe('db.bad-spec');
    expect(codeOf(() => new PgDb({ url: `postgres://postgres@127.0.0.1:${pg!.port}/no_such_db` }))).toBe('db.unavailable');
  });
});

describe('--database on SQLite', () => {
  it('absent is DATA/registry.sqlite, a path is that SQLite file; both open migrated', () => {
    const dir = tempDir();
    expect(parseDatabaseSpec(undefined, dir)).toEqual({ kind: 'sqlite-dir', dataDir: dir });
    const file = join(dir, 'elsewhere.sqlite');
    const spec = parseDatabaseSpec(file, '/unused');
    expect(spec).toEqual({ kind: 'sqlite-file', file });
    const { db } = openDatabase(spec);
    track(db);
    expect(db.dialect).toBeUndefined();
    expect(appliedMigrations(db).map((m) => m.version)).toEqual([1, 2]);
  });
});

describe('a SQLite registry from before versioned migrations', () => {
  const fixture = readFileSync(join(PROJECT_ROOT, 'test/fixtures/registry/before-migrations.sql'), 'utf8');

  it('opens as version 1, then migration 2, with every row kept (the history rows by their rowid as id), and opening it again applies nothing', () => {
    const file = join(tempDir(), 'registry.sqlite');
    const made = new Database(file);
    made.exec(fixture);
    made.close();
    const db = track(openSqliteRegistry(file));
    expect(appliedMigrations(db).map((m) => m.version)).toEqual([1, 2]);
    expect(db.prepare('SELECT person_id, token FROM cards ORDER BY person_id').all()).toEqual([
      { person_id: 'p-1', token: 'tok-c' },
      { person_id: 'p-2', token: 'tok-b' },
    ]);
    expect(db.prepare('SELECT seq, eff_ms, fare FROM journal').get()).toEqual({ seq: 4294967301, eff_ms: 1764576000123, fare: 3500 });
    expect(db.prepare('SELECT rec FROM entries').pluck().get()).toEqual(Buffer.from([0, 1, 2, 254, 255]));
    expect(db.prepare('SELECT id, token, masked FROM holder_card_history').all()).toEqual([{ id: 1, token: 'tok-a', masked: '220000******0001' }]);
    expect(db.prepare('SELECT count(*) FROM audit').pluck().get()).toBe(1);
    expect(db.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe('3');
    db.close();
    const again = track(new Database(file));
    expect(migrateSchema(again)).toMatchObject({ from: 2, applied: [], recognised: false });
  });

  it('the upgrade of a registry from before migrations makes, on an empty file, exactly the schema the migrations make (it is frozen: a schema change is a new migration)', () => {
    const byMigration = new Database(':memory:');
    migrateSchema(byMigration);
    const byModules = new Database(':memory:');
    migrateLegacyRegistry(byModules);
    const schema = (db: Database.Database) =>
      (
        db.prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY type, name").all() as {
          type: string;
          name: string;
          sql: string;
        }[]
      ).map((o) => `${o.type} ${o.name}: ${o.sql.replace(/ IF NOT EXISTS/g, '').replace(/\s+/g, ' ')}`);
    expect(schema(byMigration)).toEqual(schema(byModules));
    byMigration.close();
    byModules.close();
  });
});
