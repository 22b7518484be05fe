import type { Alarm, DeviceDetail, FleetRow, FleetWire, StatusReport } from '../../protocol/console-api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { expandFleetRow } from '../../protocol/fleet-rows.js';
import { currentVersions, type Db } from '../registry.js';
import { searchJournal } from './journal.js';

/** When a device needs attention (the fleet page's thresholds; the query may change them). */
export interface FleetPolicy {
  /** Not heard of for longer than this, or offline (its last will): silent. */
  silentMinutes: number;
  /** Holds an older version of a list whose current version was published longer ago than this: list-old. */
  listMaxAgeMinutes: number;
}
export const DEFAULT_FLEET_POLICY: FleetPolicy = { silentMinutes: 60, listMaxAgeMinutes: 60 };

/** A minutes parameter as the server reads it: a whole number of minutes from 1 to a year, else the default. */
export function minutesParam(v: string | undefined, dflt: number): number {
  const n = Number(v);
  return v !== undefined && Number.isInteger(n) && n >= 1 && n <= 525_600 ? n : dflt;
}

interface Row {
  id: string;
  kind: string | null;
  school: string | null;
  route: string | null;
  vehicle: string | null;
  enrolled_at: string | null;
  revoked_at: string | null;
  online: number | null;
  last_seen: string | null;
  lists: string | null;
  backlog: number | null;
  reader: string | null;
}

/** Enrolled devices and devices that only reported a status (development brokers without enrolment). */
const DEVICES_SQL = `
SELECT i.id, i.kind, i.school, i.route, i.vehicle, i.enrolled_at, i.revoked_at, d.online, d.last_seen, d.lists, d.backlog, d.reader
  FROM device_identities i LEFT JOIN devices d ON d.id = i.id
UNION ALL
SELECT d.id, NULL, NULL, NULL, NULL, NULL, NULL, d.online, d.last_seen, d.lists, d.backlog, d.reader
  FROM devices d WHERE d.id NOT IN (SELECT id FROM device_identities)`;

/** Devices whose last three status reports each show a larger backlog than the one before. */
function growingBacklogs(db: Db, only?: string): Set<string> {
  const rows = db
    .prepare(
      `SELECT device, backlog FROM (SELECT device, backlog, row_number() OVER (PARTITION BY device ORDER BY at DESC, id DESC) AS n FROM console_status_log ${only ? 'WHERE device = ?' : ''}) AS recent
       WHERE n <= 3 ORDER BY device, n`,
    )
    .all(...(only ? [only] : [])) as { device: string; backlog: number }[];
  const out = new Set<string>();
  for (let i = 0; i + 2 < rows.length; i++) {
    const [a, b, c] = [rows[i]!, rows[i + 1]!, rows[i + 2]!];
    // newest first: a > b > c is a backlog that grew over the last two reports
    if (a.device === b.device && b.device === c.device && a.backlog > b.backlog && b.backlog > c.backlog) out.add(a.device);
  }
  return out;
}

/** A device's compact fleet row (protocol/console-api.ts FleetRow): only what is not null or default, with its alarms. */
function toRow(r: Row, current: Record<string, number>, publishedMs: Map<string, number>, growing: Set<string>, policy: FleetPolicy, nowMs: number): FleetRow {
  const out: FleetRow = { id: r.id };
  if (r.kind !== null) out.kind = r.kind;
  if (r.school !== null) out.school = r.school;
  if (r.route !== null) out.route = r.route;
  if (r.vehicle !== null) out.vehicle = r.vehicle;
  const online = r.online === 1 && !r.revoked_at;
  if (online) out.online = true;
  if (r.last_seen !== null) out.lastSeen = r.last_seen;
  if (r.enrolled_at !== null) out.enrolledAt = r.enrolled_at;
  if (r.revoked_at !== null) out.revokedAt = r.revoked_at;
  const held = r.lists ? (JSON.parse(r.lists) as Record<string, number>) : {};
  let old = false;
  let any = false;
  for (const [s, v] of Object.entries(held)) {
    any = true;
    if (v < (current[s] ?? 0) && nowMs - (publishedMs.get(s) ?? nowMs) > policy.listMaxAgeMinutes * 60_000) old = true;
  }
  if (any) out.lists = held;
  if (r.backlog) out.backlog = r.backlog;
  if (r.reader !== null) out.reader = r.reader;
  const alarms: Alarm[] = [];
  const seen = r.last_seen ? Date.parse(r.last_seen) : NaN;
  if (r.revoked_at) alarms.push('revoked');
  else if (!online || !(nowMs - seen <= policy.silentMinutes * 60_000)) alarms.push('silent');
  if (old && !r.revoked_at) alarms.push('list-old');
  if (growing.has(r.id) && !r.revoked_at) alarms.push('backlog-growing');
  if (alarms.length > 0) out.alarms = alarms;
  return out;
}

function published(db: Db): Map<string, number> {
  return new Map(
    (db.prepare('SELECT scope, updated_at FROM scopes').all() as { scope: string; updated_at: string }[]).map((s) => [s.scope, Date.parse(s.updated_at)]),
  );
}

/** The fleet page: every device (of one school, when `school` is given) with its alarms, as compact rows sorted by id. */
export function fleet(db: Db, policy: FleetPolicy, o: { now?: Date; school?: string | undefined } = {}): FleetWire {
  const now = o.now ?? new Date();
  const current = currentVersions(db);
  const pub = published(db);
  const growing = growingBacklogs(db);
  const rows = db
    .prepare(`SELECT * FROM (${DEVICES_SQL}) AS fleet ${o.school !== undefined ? 'WHERE school = ?' : ''} ORDER BY id`)
    .all(...(o.school !== undefined ? [o.school] : [])) as Row[];
  return {
    at: now.toISOString(),
    current,
    policy,
    devices: rows.map((r) => toRow(r, current, pub, growing, policy, now.getTime())),
  };
}

/** One device: its fleet row, its latest status reports and journal entries; server.not-found for an unknown id (or another school's). */
export function deviceDetail(db: Db, id: string, policy: FleetPolicy, o: { now?: Date; school?: string | undefined } = {}): DeviceDetail {
  const now = o.now ?? new Date();
  const r = db.prepare(`SELECT * FROM (${DEVICES_SQL}) AS fleet WHERE id = ?`).get(id) as Row | undefined;
  if (!r || (o.school !== undefined && r.school !== o.school)) throw new RcError(ErrorCode.ServerNotFound, `no device ${id}`, { device: id });
  const current = currentVersions(db);
  const device = expandFleetRow(toRow(r, current, published(db), growingBacklogs(db, id), policy, now.getTime()), current);
  const history = (
    db.prepare('SELECT at, online, backlog, lists, reader FROM console_status_log WHERE device = ? ORDER BY at DESC, id DESC LIMIT 100').all(id) as {
      at: string;
      online: number;
      backlog: number;
      lists: string;
      reader: string | null;
    }[]
  ).map((h): StatusReport => ({
    at: h.at,
    online: h.online === 1,
    backlog: h.backlog,
    lists: JSON.parse(h.lists) as Record<string, number>,
    reader: h.reader,
  }));
  return { device, history, journal: searchJournal(db, { device: id, limit: 100 }) };
}
