import type { Db } from '../registry.js';

/** Carriers and the carrier of each route from a date (registry schema 3, imported as `routes` CSV). */
export interface Carrier {
  id: string;
  name: string;
  inn: string;
}

export function carriers(db: Db): Map<string, Carrier> {
  const rows = db.prepare('SELECT id, name, inn FROM carriers ORDER BY id').all() as Carrier[];
  return new Map(rows.map((c) => [c.id, c]));
}

/** route → its assignments by valid_from ascending; `carrierOn` picks the one in force on a day. */
export function routeAssignments(db: Db): Map<string, { from: string; carrier: string }[]> {
  const rows = db.prepare('SELECT route_id, valid_from, carrier_id FROM route_carriers ORDER BY route_id, valid_from').all() as {
    route_id: string;
    valid_from: string;
    carrier_id: string;
  }[];
  const out = new Map<string, { from: string; carrier: string }[]>();
  for (const r of rows) {
    const list = out.get(r.route_id) ?? [];
    list.push({ from: r.valid_from, carrier: r.carrier_id });
    out.set(r.route_id, list);
  }
  return out;
}

/** The carrier running the route on that day: the latest assignment from that day or earlier; null when none. */
export function carrierOn(assign: Map<string, { from: string; carrier: string }[]>, route: string, day: string): string | null {
  let found: string | null = null;
  for (const a of assign.get(route) ?? []) {
    if (a.from <= day) found = a.carrier;
    else break;
  }
  return found;
}
