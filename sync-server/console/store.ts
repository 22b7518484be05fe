import type { DeviceStatus } from '../../protocol/wire/messages.js';
import type { Db } from '../registry.js';

/**
 * The console's own registry tables (issue 12; made by db/migrations):
 *  - console_status_log: the status reports each device sent (the latest 200 per device), for its status history
 *    and the "backlog keeps growing" alarm; `id` orders reports of one time (a registry made before it existed gets
 *    it from the implicit rowid: migration 2);
 *  - console_stop_masks: the masked PAN (first 6, last 4) of a card the operator stop-listed by its number,
 *    so the stop-list page can show which card it is. Never the PAN.
 */

/** Status reports kept per device. */
export const STATUS_HISTORY = 200;

/** Keep one status report (after ingest stored it in `devices`); the oldest beyond STATUS_HISTORY go. */
export function recordStatus(db: Db, s: DeviceStatus, now = new Date()): void {
  db.transaction(() => {
    db.prepare('INSERT INTO console_status_log(device, at, online, backlog, lists, reader) VALUES (?,?,?,?,?,?)').run(
      s.device,
      now.toISOString(),
      s.online ? 1 : 0,
      s.backlog,
      JSON.stringify(s.lists),
      s.reader ?? null,
    );
    db.prepare(
      `DELETE FROM console_status_log WHERE device = ? AND id NOT IN (SELECT id FROM console_status_log WHERE device = ? ORDER BY at DESC, id DESC LIMIT ${STATUS_HISTORY})`,
    ).run(s.device, s.device);
  })();
}
