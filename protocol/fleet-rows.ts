import type { FleetDevice, FleetRow } from './console-api.js';

/**
 * The fleet answer's compact rows (GET /v1/console/fleet, protocol/console-api.ts `FleetRow`) carry only what is
 * not null or default: 10,000 devices are about half the bytes of full rows, so the server writes, and the page
 * parses, half as much. Each row expands to the full `FleetDevice` with the answer's `current` list versions.
 * No zod here: the console page bundles this file.
 */
export function expandFleetRow(r: FleetRow, current: Readonly<Record<string, number>>): FleetDevice {
  const lists: FleetDevice['lists'] = {};
  for (const [s, v] of Object.entries(r.lists ?? {})) lists[s] = { device: v, current: current[s] ?? 0 };
  return {
    id: r.id,
    kind: r.kind ?? null,
    school: r.school ?? null,
    route: r.route ?? null,
    vehicle: r.vehicle ?? null,
    online: r.online ?? false,
    lastSeen: r.lastSeen ?? null,
    enrolledAt: r.enrolledAt ?? null,
    revokedAt: r.revokedAt ?? null,
    lists,
    backlog: r.backlog ?? 0,
    reader: r.reader ?? null,
    alarms: r.alarms ?? [],
  };
}
