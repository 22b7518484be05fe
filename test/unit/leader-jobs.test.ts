/**
 * Leader-only jobs (issue 16 item 2, sync-server/start/leader.ts): the periodic jobs run only while this instance
 * leads, and a follower's list change is not lost: marked in the registry, committed by the leader.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openTestRegistry } from '../support/test-db.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { applyImport, parseImport, type ImportKind } from '../../sync-server/import.js';
import { loadOrCreateSigningKey } from '../../sync-server/keys.js';
import { ALL_TOKENS, Materializer, type Dirty } from '../../sync-server/materialize.js';
import { type Db } from '../../sync-server/registry.js';
import { singleLeadership, type Leadership } from '../../sync-server/start/leader.js';
import { startLists } from '../../sync-server/start/lists.js';
import { startTimers } from '../../sync-server/start/timers.js';
import { quietLogger } from '../support/log.js';
import { cardsCsv, tokenOf } from '../support/registry-csv.js';
import { waitFor } from '../support/wait.js';

const log = quietLogger();
const TODAY = '2026-11-24';

/** A leadership the test hands over and takes back. */
class Switch extends EventEmitter implements Leadership {
  readonly kind = 'postgres' as const;
  leading = false;
  isLeader(): boolean {
    return this.leading;
  }
  confirm(): Promise<boolean> {
    return Promise.resolve(this.leading);
  }
  set(on: boolean): void {
    this.leading = on;
    this.emit(on ? 'gained' : 'lost');
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('periodic jobs run only on the leader', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a follower runs no charging, reseal, usage or marked-list commit; the leader runs them; a leader that steps down stops', async () => {
    vi.useFakeTimers();
    const calls: string[] = [];
    const leader = new Switch();
    const timers = startTimers(
      { chargingIntervalMs: 1000, usageIntervalMs: 1000 },
      {
        charging: { runOnce: () => (calls.push('charge'), Promise.resolve(0)), stop: () => Promise.resolve() },
        lists: {
          publisher: { opts: { manifestTtlMs: 4 * 60_000 }, reseal: () => (calls.push('reseal'), Promise.resolve()) } as never,
          usage: { tick: () => (calls.push('usage'), null), stop: () => undefined } as never,
          serial: (f) => f(),
          commitMarked: () => (calls.push('marked'), Promise.resolve([])),
        },
        leader,
        log,
      },
    );
    await vi.advanceTimersByTimeAsync(120_000);
    expect(calls).toEqual([]);
    leader.set(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(new Set(calls)).toEqual(new Set(['charge', 'reseal', 'usage', 'marked']));
    expect(calls.filter((c) => c === 'charge').length).toBe(60);
    calls.length = 0;
    leader.set(false);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(calls).toEqual([]);
    await timers.close();
  });
});

describe("a follower's list change reaches the leader", () => {
  const dirs: string[] = [];
  const dbs: Db[] = [];
  afterEach(() => {
    for (const d of dbs.splice(0)) if (d.open) d.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const registry = () => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-leader-jobs-'));
    dirs.push(dir);
    const db = openTestRegistry(dir);
    dbs.push(db);
    return { dir, db, key: loadOrCreateSigningKey(dir).privateKey };
  };
  const change = async (db: Db, kind: ImportKind, text: string) => {
    async function* lines() {
      yield text;
    }
    const { rows } = await parseImport(kind, lines(), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: TODAY, categories: ['pensioner'] });
    return applyImport(db, kind, rows, TODAY);
  };
  const version = (db: Db, scope: string) => (db.prepare('SELECT version FROM scopes WHERE scope = ?').pluck().get(scope) as number | undefined) ?? 0;
  const marks = (db: Db) => db.prepare("SELECT count(*) FROM meta WHERE key LIKE 'lists.recompute:%'").pluck().get() as number;
  const agrees = (db: Db, scope: string) => {
    const want = [...new Materializer(db).scan(scope)].map((e) => `${e.token}:${e.rec.toString('hex')}`);
    const have = (db.prepare('SELECT token, rec FROM entries WHERE scope = ? ORDER BY token').all(scope) as { token: string; rec: Buffer }[]).map(
      (e) => `${e.token}:${e.rec.toString('hex')}`,
    );
    return JSON.stringify(have) === JSON.stringify(want) && want.length > 0;
  };

  it('the follower commits nothing and marks the change; the leader commits what was marked and clears the marks', async () => {
    const { dir, db, key } = registry();
    const lead = startLists(db, key, {}, log, singleLeadership());
    const second = openTestRegistry(dir); // the follower: another connection to the same registry, as another instance
    dbs.push(second);
    const follow = startLists(second, key, {}, log, new Switch());
    lead.publisher.commit(await change(db, 'cards', cardsCsv(0, 20)));
    const before = version(db, 'stoplist');

    const dirty = await change(second, 'stoplist', `token,reason\n${tokenOf(3)},lost\n${tokenOf(4)},stolen\n`);
    expect(await follow.commitAndPublish(dirty)).toEqual([]);
    expect(version(db, 'stoplist')).toBe(before);
    expect(marks(db)).toBe(2);
    expect(agrees(db, 'stoplist')).toBe(false); // the registry has the stop-list change, the lists not yet

    expect(await lead.commitMarked()).toContain('stoplist');
    expect(version(db, 'stoplist')).toBe(before + 1);
    expect(agrees(db, 'stoplist')).toBe(true);
    expect(marks(db)).toBe(0);
    expect(await lead.commitMarked()).toEqual([]); // nothing left
  });

  it('a whole-scope mark and a school scope (a name with ":") are committed too, and on gaining the leadership', async () => {
    const { dir, db, key } = registry();
    const was = new Switch();
    const lists = startLists(db, key, {}, log, was);
    const other = openTestRegistry(dir);
    dbs.push(other);
    const follow = startLists(other, key, {}, log, new Switch());
    await change(other, 'cards', cardsCsv(0, 10));
    const whole: Dirty = new Map([
      ['transit', ALL_TOKENS as Set<string>],
      ['school:s1', ALL_TOKENS as Set<string>],
    ]);
    await follow.commitAndPublish(whole);
    expect(marks(db)).toBe(2);
    expect(version(db, 'transit')).toBe(0);
    const committed = vi.spyOn(lists.publisher, 'commit');
    was.set(true); // this instance starts leading: it commits what followers marked
    await waitFor(() => marks(db) === 0, { timeoutMs: 5000, what: 'the marks committed on gaining the leadership' });
    expect(version(db, 'transit')).toBeGreaterThan(0);
    // the school's scope name read back whole, though it holds ':' (it has no entries yet: no new version)
    expect(committed.mock.calls.map((c) => [...c[0].entries()]).find((d) => d.length === 2)).toEqual([
      ['school:s1', ALL_TOKENS],
      ['transit', ALL_TOKENS],
    ]);
    expect(agrees(db, 'transit')).toBe(true);
  });
});
