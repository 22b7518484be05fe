import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfigFile, withDevice } from '../../device/config/load.js';
import { processTap } from '../../device/runtime/process-tap.js';
import { CURRENT_STORE_SCHEMA, Store, loadListsFile, readListsFile } from '../../device/store/index.js';
import type { TransitEntry } from '../../protocol/lists.js';
import { readRaw } from './store-raw.js';
import { expectRcError } from '../support/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'rc-store-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const open: Store[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});
let n = 0;
function newStore(path = join(dir, `s${n++}.db`)): Store {
  const s = Store.open(path, { deviceId: 'dev-1' });
  open.push(s);
  return s;
}

const tok = (i: number) => i.toString(16).padStart(32, '0');
const transit = (i: number, category = 'pensioner'): TransitEntry =>
  ({ token: tok(i), cardExpiry: '2030-01', benefits: [{ category, validFrom: '2020-01-01', validTo: '2030-12-31' }] }) as TransitEntry;
const snap = (version: number, ids: number[], category = 'pensioner') => ({
  scope: 'transit' as const,
  version,
  entries: ids.map((i) => transit(i, category)),
});

describe('lists', () => {
  it('a snapshot becomes visible whole, with its version', () => {
    const s = newStore();
    expect(s.applySnapshot(snap(3, [1, 2, 3]))).toMatchObject({ applied: true, fromVersion: 0, version: 3, entries: 3 });
    expect(s.listVersions()).toEqual({ transit: 3 });
    expect(s.readView(tok(2)).transit).toEqual(transit(2));
    expect(s.readView(tok(9)).transit).toBeNull();
    expect(s.entryCount('transit')).toBe(3);
  });

  it('a newer snapshot replaces the old one entirely', () => {
    const s = newStore();
    s.applySnapshot(snap(1, [1, 2]));
    s.applySnapshot(snap(2, [2, 3], 'disabled'));
    expect(s.readView(tok(1)).transit).toBeNull();
    expect(s.readView(tok(2)).transit?.benefits[0]?.category).toBe('disabled');
    expect(s.entryCount('transit')).toBe(2);
  });

  it('an older version is refused (store.list-rollback), the same version is a no-op', () => {
    const s = newStore();
    s.applySnapshot(snap(5, [1]));
    expect(expectRcError(() => s.applySnapshot(snap(4, [2]))).code).toBe('store.list-rollback');
    expect(s.applySnapshot(snap(5, [2])).applied).toBe(false);
    expect(s.readView(tok(1)).transit).not.toBeNull();
    expect(s.readView(tok(2)).transit).toBeNull();
  });

  it.each([
    [
      'an unknown benefit category',
      {
        scope: 'transit',
        version: 2,
        entries: [transit(1), { ...transit(2), benefits: [{ category: 'astronaut', validFrom: '2020-01-01', validTo: '2030-01-01' }] }],
      },
      'entries.1.benefits.0.category',
    ],
    ['an unknown stop reason', { scope: 'stoplist', version: 2, entries: [{ token: tok(1), reason: 'bored', since: '2026-01-01' }] }, 'entries.0.reason'],
    ['a short token', { scope: 'transit', version: 2, entries: [{ ...transit(1), token: 'abc' }] }, 'entries.0.token'],
    [
      'an impossible date',
      {
        scope: 'school:7',
        version: 2,
        entries: [{ token: tok(1), cardExpiry: '2030-13', role: 'student', grade: 1, mealCategory: null, validFrom: '2026-09-01', validTo: '2027-05-31' }],
      },
      'entries.0.cardExpiry',
    ],
  ])('%s is refused before anything changes (store.list-invalid)', (_n, bad, path) => {
    const s = newStore();
    s.applySnapshot({ scope: bad.scope as 'transit', version: 1, entries: [] });
    const e = expectRcError(() => s.applySnapshot(bad as never));
    expect(e.code).toBe('store.list-invalid');
    expect(e.context?.path).toBe(path);
    expect(e.message).toContain('nothing applied');
    expect(s.listVersions()[bad.scope]).toBe(1);
    expect(s.entryCount(bad.scope)).toBe(0);
  });

  it('the same token twice in a snapshot is refused, nothing applied', () => {
    const s = newStore();
    s.applySnapshot(snap(1, [7]));
    expect(expectRcError(() => s.applySnapshot(snap(2, [1, 2, 1]))).code).toBe('store.list-invalid');
    expect(s.listVersion('transit')).toBe(1);
    expect(s.readView(tok(7)).transit).not.toBeNull();
  });

  it('an unknown scope is refused (store.list-unknown-scope)', () => {
    const s = newStore();
    expect(expectRcError(() => s.applySnapshot({ scope: 'museum' as never, version: 1, entries: [] })).code).toBe('store.list-unknown-scope');
    expect(expectRcError(() => s.applyDelta({ scope: 'school:../x' as never, fromVersion: 0, toVersion: 1, upserts: [], removes: [] })).code).toBe(
      'store.list-unknown-scope',
    );
  });

  it('a delta upserts and removes in one step and moves the version', () => {
    const s = newStore();
    s.applySnapshot(snap(1, [1, 2]));
    const r = s.applyDelta({ scope: 'transit', fromVersion: 1, toVersion: 2, upserts: [transit(2, 'veteran'), transit(3)], removes: [tok(1)] });
    expect(r).toMatchObject({ applied: true, fromVersion: 1, version: 2, entries: 3 });
    expect(s.readView(tok(1)).transit).toBeNull();
    expect(s.readView(tok(2)).transit?.benefits[0]?.category).toBe('veteran');
    expect(s.readView(tok(3)).transit).not.toBeNull();
  });

  it('a delta to a scope never held starts it at fromVersion 0', () => {
    const s = newStore();
    s.applyDelta({ scope: 'stoplist', fromVersion: 0, toVersion: 4, upserts: [{ token: tok(1), reason: 'lost', since: '2026-11-01' }], removes: [] });
    expect(s.readView(tok(1)).stop).toEqual({ token: tok(1), reason: 'lost', since: '2026-11-01' });
    expect(s.listVersion('stoplist')).toBe(4);
  });

  it('a delta from another version is a gap; an older one a rollback; the held one a no-op', () => {
    const s = newStore();
    s.applySnapshot(snap(5, [1]));
    expect(expectRcError(() => s.applyDelta({ scope: 'transit', fromVersion: 3, toVersion: 6, upserts: [], removes: [] })).code).toBe('store.list-version-gap');
    expect(expectRcError(() => s.applyDelta({ scope: 'transit', fromVersion: 2, toVersion: 4, upserts: [], removes: [] })).code).toBe('store.list-rollback');
    expect(s.applyDelta({ scope: 'transit', fromVersion: 4, toVersion: 5, upserts: [transit(9)], removes: [] }).applied).toBe(false);
    expect(s.readView(tok(9)).transit).toBeNull();
    expect(s.listVersion('transit')).toBe(5);
  });

  it('a delta with one bad entry changes nothing', () => {
    const s = newStore();
    s.applySnapshot(snap(1, [1]));
    const e = expectRcError(() =>
      s.applyDelta({
        scope: 'transit',
        fromVersion: 1,
        toVersion: 2,
        upserts: [transit(2), { ...transit(3), cardExpiry: 'soon' } as never],
        removes: [tok(1)],
      }),
    );
    expect(e.code).toBe('store.list-invalid');
    expect(e.context?.path).toBe('upserts.1.cardExpiry');
    expect(s.readView(tok(1)).transit).not.toBeNull();
    expect(s.readView(tok(2)).transit).toBeNull();
    expect(s.listVersion('transit')).toBe(1);
  });

  it('a chunked snapshot is invisible until commit, then whole', () => {
    const s = newStore();
    s.applySnapshot(snap(1, [1]));
    const w = s.beginSnapshot('transit', 2);
    w.add([transit(2), transit(3)]);
    w.add([transit(4)]);
    expect(s.readView(tok(2)).transit).toBeNull();
    expect(s.readView(tok(1)).transit).not.toBeNull();
    expect(w.commit()).toMatchObject({ applied: true, version: 2, entries: 3 });
    expect(s.readView(tok(1)).transit).toBeNull();
    expect(s.readView(tok(4)).transit).not.toBeNull();
  });

  it('a bad chunk aborts the download; the old list stays', () => {
    const s = newStore();
    s.applySnapshot(snap(1, [1]));
    const w = s.beginSnapshot('transit', 2);
    w.add([transit(2)]);
    expect(expectRcError(() => w.add([{ token: tok(3) }])).code).toBe('store.list-invalid');
    expect(() => w.commit()).toThrow();
    expect(s.listVersion('transit')).toBe(1);
    expect(s.readView(tok(1)).transit).not.toBeNull();
    expect(readRaw(s.path, (db) => db.prepare(`SELECT count(*) FROM gens WHERE state != 'active'`).pluck().get())).toBe(0);
  });

  it('a download interrupted by a crash is dropped at the next open', () => {
    const path = join(dir, 'interrupted.db');
    const s = Store.open(path, { deviceId: 'd' });
    s.applySnapshot(snap(1, [1]));
    s.beginSnapshot('transit', 2).add([transit(2), transit(3)]);
    s.close(); // never committed
    const t = newStore(path);
    expect(t.listVersion('transit')).toBe(1);
    const listTables = readRaw(t.path, (db) =>
      db.prepare(`SELECT count(*) FROM sqlite_master WHERE name LIKE 'list\\_%' ESCAPE '\\' AND type = 'table'`).pluck().get(),
    );
    expect(listTables).toBe(1);
    expect(t.readView(tok(2)).transit).toBeNull();
  });

  it('list status tells version and when it was applied', () => {
    const s = newStore();
    const before = Date.now();
    s.applySnapshot(snap(4, [1]));
    const [st] = s.listStatus();
    expect(st).toMatchObject({ scope: 'transit', version: 4 });
    expect(st!.appliedMs).toBeGreaterThanOrEqual(before);
  });

  it('tokens are stored as 16-byte BLOBs', () => {
    const s = newStore();
    s.applySnapshot(snap(1, [1]));
    const row = readRaw(s.path, (db) => {
      const gen = db.prepare(`SELECT gen FROM scopes WHERE scope = 'transit'`).pluck().get() as number;
      return db.prepare(`SELECT typeof(token) AS t, length(token) AS n FROM list_${gen}`).get();
    });
    expect(row).toEqual({ t: 'blob', n: 16 });
  });
});

describe('store file', () => {
  it('is durable before green: WAL with synchronous=FULL', () => {
    const s = newStore();
    expect(s.settings().journalMode).toBe('wal');
    expect(s.settings().synchronous).toBe(2);
    expect(s.settings().schema).toBe(CURRENT_STORE_SCHEMA);
  });

  it('a database from newer software is refused (store.schema-too-new) and left untouched', () => {
    const path = join(dir, 'future.db');
    const db = new Database(path);
    db.pragma(`user_version = ${CURRENT_STORE_SCHEMA + 1}`);
    db.close();
    const e = expectRcError(() => Store.open(path, { deviceId: 'd' }));
    expect(e.code).toBe('store.schema-too-new');
    const again = new Database(path);
    expect(again.pragma('user_version', { simple: true })).toBe(CURRENT_STORE_SCHEMA + 1);
    expect(again.prepare(`SELECT count(*) FROM sqlite_master`).pluck().get()).toBe(0);
    again.close();
  });

  it('an empty file from an older software version is upgraded in place', () => {
    const path = join(dir, 'old.db');
    const db = new Database(path);
    db.exec('CREATE TABLE unrelated (x)'); // user_version 0
    db.close();
    const s = newStore(path);
    expect(s.settings().schema).toBe(CURRENT_STORE_SCHEMA);
    expect(s.lastSeq()).toBe(0);
  });

  it('idle maintenance folds the WAL into the database', () => {
    const s = newStore();
    s.applySnapshot(snap(1, [1, 2, 3]));
    s.applyDelta({ scope: 'transit', fromVersion: 1, toVersion: 2, upserts: [transit(4)], removes: [] });
    expect(s.maintenance()).toBeGreaterThan(0);
    expect(s.readView(tok(4)).transit).not.toBeNull();
  });

  it('a path that cannot be opened is store.open-failed', () => {
    expect(expectRcError(() => Store.open(join(dir, 'no/such/dir/x.db'), { deviceId: 'd' })).code).toBe('store.open-failed');
  });

  it('counters, marks and the journal survive a reopen; seq continues', () => {
    const path = join(dir, 'reopen.db');
    const cfg = loadConfigFile('test/fixtures/decide/bus.config.json');
    const s = Store.open(path, { deviceId: 'bus-1' });
    loadListsFile(s, 'test/fixtures/decide/lists.json');
    const tap = (wall: number) => ({
      wallTime: wall,
      monotonicMs: wall,
      bootId: 'b',
      direction: null,
      card: { token: '11111111111111111111111111111111', expiry: null },
    });
    const t0 = Date.parse('2026-11-24T08:00:00+03:00');
    expect(processTap(s, tap(t0), cfg).entry.seq).toBe(1);
    s.close();
    const r = newStore(path);
    expect(r.readView('11111111111111111111111111111111').counters).toEqual({ 'quota:pensioner@2026-11': 1 });
    // repeat window remembered across the restart
    const cfg2 = withDevice(cfg, { id: 'bus-1' });
    const again = processTap(r, tap(t0 + 60_000), cfg2);
    expect(again.decision.reason).toBe('repeat-tap');
    expect(again.entry.seq).toBe(2);
  });
});

describe('lists file', () => {
  it('the example lists file loads: every scope with its version', () => {
    const s = newStore();
    const r = loadListsFile(s, 'test/fixtures/decide/lists.json');
    expect(r.map((x) => [x.scope, x.version])).toEqual([
      ['transit', 12],
      ['stoplist', 40],
      ['school:7', 3],
    ]);
    expect(s.readView('66666666666666666666666666666666').schools['school:7']?.mealCategory).toBe('free-breakfast');
  });

  it('an unknown category anywhere refuses the whole file: file, line, path; nothing applied', () => {
    const p = join(dir, 'bad-lists.json');
    writeFileSync(
      p,
      [
        '{"lists": [',
        '  {"scope": "stoplist", "version": 1, "entries": []},',
        '  {"scope": "transit", "version": 2, "entries": [',
        `    {"token": "${tok(1)}", "cardExpiry": "2030-01", "benefits": []},`,
        `    {"token": "${tok(2)}", "cardExpiry": "2030-01", "benefits": [{"category": "astronaut", "validFrom": "2020-01-01", "validTo": "2030-01-01"}]}`,
        '  ]}',
        ']}',
      ].join('\n'),
    );
    const s = newStore();
    const e = expectRcError(() => loadListsFile(s, p));
    expect(e.code).toBe('store.list-invalid');
    expect(e.message).toContain(`${p}:5:`);
    expect(e.context?.path).toBe('lists.1.entries.1.benefits.0.category');
    expect(s.listVersions()).toEqual({});
  });

  it('a scope given twice is refused', () => {
    const p = join(dir, 'twice.json');
    writeFileSync(
      p,
      JSON.stringify({
        lists: [
          { scope: 'transit', version: 1, entries: [] },
          { scope: 'transit', version: 2, entries: [] },
        ],
      }),
    );
    expect(expectRcError(() => readListsFile(p)).context?.path).toBe('lists.1.scope');
  });
});
