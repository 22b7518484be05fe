/**
 * The cabinet's "today" is the operator's service day, not the UTC date: from 21:00 UTC it is already the next day in
 * Moscow, and a trip made then (service day = the Moscow date) was left out of the trips page until midnight UTC
 * (found when cabinet-browser.test.ts failed every run after 21:00 UTC).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { Cabinet } from '../../sync-server/cabinet/service.js';
import type { ConnectDeps } from '../../sync-server/cabinet/connect.js';
import type { Holder } from '../../sync-server/cabinet/sessions.js';
import { serviceDay, settlementOptions } from '../../sync-server/settlement/days.js';
import type { Db } from '../../sync-server/registry.js';
import { quietLogger } from '../support/log.js';
import { openTestRegistry } from '../support/test-db.js';

const TOKEN = 'a'.repeat(32);
const holder: Holder = { personId: 'p-late', subject: 's', name: 'Late Rider', esia: true, csrf: 'c', sessionId: 'x' };

describe("the cabinet's today", () => {
  const open: { db: Db; dir: string }[] = [];
  afterEach(() => {
    for (const o of open.splice(0)) {
      o.db.close();
      rmSync(o.dir, { recursive: true, force: true });
    }
  });

  const setUp = (nowMs: number, settlement?: { timeZone: string; dayEndsAt: string }) => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-cabinet-today-'));
    const db = openTestRegistry(dir);
    open.push({ db, dir });
    db.prepare("INSERT INTO cards(person_id, token, expiry, key_version, updated_at) VALUES ('p-late', ?, '2031-06', 1, '2026-01-01')").run(TOKEN);
    const opts = settlementOptions(settlement);
    let seq = 0;
    const tap = (ms: number) =>
      db
        .prepare(
          "INSERT INTO journal(device, seq, time, token, kind, result, reason, fare, benefit, lists, received_at, route, vehicle, eff_ms, service_day) VALUES ('bus-late', ?, ?, ?, 'bus', 'allow', 'full-fare', 3500, NULL, '{}', ?, '7', 'A001AA08', ?, ?)",
        )
        .run(++seq, new Date(ms).toISOString(), TOKEN, new Date(ms).toISOString(), ms, serviceDay(ms, opts));
    const cabinet = new Cabinet({
      db,
      provider: null,
      snilsKey: Buffer.alloc(32, 1),
      tokenKey: DEV_TOKEN_KEY,
      connect: {} as ConnectDeps, // not used by the trips or a child's days
      log: quietLogger(),
      clock: () => nowMs,
      ...(settlement ? { settlement } : {}),
    });
    return { cabinet, tap, opts };
  };

  it('a trip at 00:30 in Moscow (21:30 UTC the day before) is on the trips page at once', () => {
    const now = Date.parse('2026-12-02T21:45:00Z'); // 00:45 on 3 December in Moscow
    const { cabinet, tap } = setUp(now);
    tap(Date.parse('2026-12-02T21:30:00Z')); // service day 2026-12-03 (Moscow, day ends at midnight)
    tap(Date.parse('2026-12-02T12:00:00Z')); // 2026-12-02
    const trips = cabinet.trips(holder, {}).trips;
    expect(trips.map((t) => t.time)).toEqual(['2026-12-02T12:00:00.000Z', '2026-12-02T21:30:00.000Z']);
    // the page asks for the year up to the day the server calls today: the Moscow date
    expect(cabinet.me(holder).today).toBe('2026-12-03');
    // asked for today by its date, the same
    expect(cabinet.trips(holder, { from: '2026-12-03', to: '2026-12-03' }).trips.map((t) => t.time)).toEqual(['2026-12-02T21:30:00.000Z']);
  });

  it("another time zone and a service day ending at 04:00: a trip at 02:00 local is the day before's; both days shown", () => {
    const settlement = { timeZone: 'Asia/Vladivostok', dayEndsAt: '04:00' }; // UTC+10
    const now = Date.parse('2026-12-02T20:30:00Z'); // 06:30 on 3 December there: its service day is 3 December
    const { cabinet, tap, opts } = setUp(now, settlement);
    const night = Date.parse('2026-12-02T16:00:00Z'); // 02:00 on 3 December local: still the service day of 2 December
    const morning = Date.parse('2026-12-02T20:10:00Z'); // 06:10 on 3 December local
    expect([serviceDay(night, opts), serviceDay(morning, opts)]).toEqual(['2026-12-02', '2026-12-03']);
    tap(night);
    tap(morning);
    expect(cabinet.trips(holder, {}).trips.map((t) => t.time)).toEqual(['2026-12-02T16:00:00.000Z', '2026-12-02T20:10:00.000Z']);
  });
});
