import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openTestRegistry } from '../support/test-db.js';
import { FleetAnswer, FleetDevice, FleetWire } from '../../protocol/console-api.js';
import { DEFAULT_FLEET_POLICY, deviceDetail, fleet } from '../../sync-server/console/fleet.js';
import { recordStatus } from '../../sync-server/console/store.js';
import { type Db } from '../../sync-server/registry.js';

/**
 * The fleet answer (GET /v1/console/fleet) carries compact rows: what is null, false, 0 or empty is left out and a
 * device's lists give only the version it holds. Expanded (FleetAnswer, the page's expandFleetRow) they are the full
 * rows the device page shows, so nothing is lost; 10,000 devices take about half the bytes of full rows.
 */
const NOW = new Date('2026-11-20T12:00:00.000Z');
const ago = (min: number) => new Date(NOW.getTime() - min * 60_000).toISOString();

let dir: string | null = null;
let db: Db | null = null;
afterEach(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  db = null;
  dir = null;
});
function registry(): Db {
  dir = mkdtempSync(join(tmpdir(), 'rc-fleet-'));
  db = openTestRegistry(dir);
  const scope = db.prepare('INSERT INTO scopes(scope, version, entries, records, updated_at) VALUES (?,?,0,0,?)');
  scope.run('transit', 3, ago(120)); // published two hours ago
  scope.run('school:S1', 5, ago(1));
  return db;
}
function identity(db: Db, id: string, kind: string, school: string | null, route: string | null, revokedAt: string | null = null): void {
  db.prepare(
    `INSERT INTO device_identities(id, kind, school, route, vehicle, direction, scopes, identity_key, box_key, pw_hash, mosq_hash, enrolled_at, revoked_at, token_id)
     VALUES (?,?,?,?,NULL,NULL,'[]',?,?,'x','x',?,?,'t')`,
  ).run(id, kind, school, route, `ik-${id}`, `bk-${id}`, ago(10_000), revokedAt);
}
const status = (db: Db, id: string, online: boolean, seen: string, lists: Record<string, number>, backlog: number, reader: string | null) =>
  db
    .prepare(
      `INSERT INTO devices(id, online, last_seen, lists, backlog, reader) VALUES (?,?,?,?,?,?)
       ON CONFLICT(id) DO UPDATE SET online = excluded.online, last_seen = excluded.last_seen, lists = excluded.lists, backlog = excluded.backlog, reader = excluded.reader`,
    )
    .run(id, online ? 1 : 0, seen, JSON.stringify(lists), backlog, reader);

describe('the fleet answer: compact rows that expand to the full ones', () => {
  it('leaves out null, false, 0 and empty fields; expanded, every row is the full device row with its alarms', () => {
    const db = registry();
    identity(db, 'gate-1', 'turnstile', 'S1', null);
    status(db, 'gate-1', true, ago(1), { 'school:S1': 5 }, 0, 'ok');
    identity(db, 'bus-1', 'bus', null, 'R7', ago(5)); // revoked
    status(db, 'bus-1', true, ago(1), { transit: 3 }, 0, null);
    status(db, 'bus-2', true, ago(2), { transit: 2 }, 12, 'ok'); // a status only (no enrolment), an old transit list
    for (const [i, backlog] of [5, 9, 20].entries())
      recordStatus(db, { device: 'bus-3', online: true, at: ago(1), lists: {}, backlog }, new Date(NOW.getTime() + i));
    status(db, 'bus-3', false, ago(200), {}, 20, null); // offline, nothing held, backlog growing

    const wire = fleet(db, DEFAULT_FLEET_POLICY, { now: NOW });
    expect(FleetWire.parse(wire)).toEqual(wire); // the schema the route declares is the one it sends
    expect(wire.current).toEqual({ 'school:S1': 5, transit: 3 });
    expect(wire.devices).toEqual([
      { id: 'bus-1', kind: 'bus', route: 'R7', lastSeen: ago(1), enrolledAt: ago(10_000), revokedAt: ago(5), lists: { transit: 3 }, alarms: ['revoked'] },
      { id: 'bus-2', online: true, lastSeen: ago(2), lists: { transit: 2 }, backlog: 12, reader: 'ok', alarms: ['list-old'] },
      { id: 'bus-3', lastSeen: ago(200), backlog: 20, alarms: ['silent', 'backlog-growing'] },
      { id: 'gate-1', kind: 'turnstile', school: 'S1', online: true, lastSeen: ago(1), enrolledAt: ago(10_000), lists: { 'school:S1': 5 }, reader: 'ok' },
    ]);

    const full = FleetAnswer.parse(JSON.parse(JSON.stringify(wire)));
    expect(full.devices.find((d) => d.id === 'bus-2')).toEqual({
      id: 'bus-2',
      kind: null,
      school: null,
      route: null,
      vehicle: null,
      online: true,
      lastSeen: ago(2),
      enrolledAt: null,
      revokedAt: null,
      lists: { transit: { device: 2, current: 3 } },
      backlog: 12,
      reader: 'ok',
      alarms: ['list-old'],
    });
    // every expanded row is a valid full row, and the very row the device page shows
    for (const d of full.devices) {
      expect(FleetDevice.parse(d)).toEqual(d);
      expect(deviceDetail(db, d.id, DEFAULT_FLEET_POLICY, { now: NOW }).device).toEqual(d);
    }
    expect(full.devices.find((d) => d.id === 'bus-3')).toMatchObject({ online: false, lists: {}, reader: null, kind: null });
  });

  it('a school sees its own devices only', () => {
    const db = registry();
    identity(db, 'gate-1', 'turnstile', 'S1', null);
    identity(db, 'gate-2', 'turnstile', 'S2', null);
    expect(fleet(db, DEFAULT_FLEET_POLICY, { now: NOW, school: 'S1' }).devices.map((d) => [d.id, d.school])).toEqual([['gate-1', 'S1']]);
  });

  it('10,000 status-only devices: about half the bytes of full rows', () => {
    const db = registry();
    db.transaction(() => {
      for (let i = 0; i < 10_000; i++)
        status(db, `bus-${String(i).padStart(5, '0')}`, i % 10 < 6, ago(i % 10 < 6 ? 0.5 : i % 97), { transit: 3 - (i % 3 === 0 ? 1 : 0) }, i % 50, 'ok');
    })();
    const wire = fleet(db, DEFAULT_FLEET_POLICY, { now: NOW });
    const compact = JSON.stringify(wire).length;
    const full = JSON.stringify(FleetAnswer.parse(wire)).length;
    expect(wire.devices).toHaveLength(10_000);
    expect(compact).toBeLessThan(full * 0.55);
  });
});
