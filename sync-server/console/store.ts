import type { DeviceStatus } from '../../protocol/wire/messages.js';
import { ensureExplicitId } from '../db/sqlite-id.js';
import type { Db } from '../registry.js';

/**
 * The console's own registry tables (issue 12), created by openRegistry:
 *  - console_status_log: the status reports each device sent (the latest 200 per device), for its status history
 *    and the "backlog keeps growing" alarm; `id` orders reports of one time (a registry made before it existed gets
 *    it from the implicit rowid, db/sqlite-id.ts);
 *  - console_stop_masks: the masked PAN (first 6, last 4) of a card the operator stop-listed by its number,
 *    so the stop-list page can show which card it is. Never the PAN.
 */
const STATUS_LOG_COLUMNS = 'device TEXT NOT NULL, at TEXT NOT NULL, online INTEGER NOT NULL, backlog INTEGER NOT NULL, lists TEXT NOT NULL, reader TEXT';
const SCHEMA = `
CREATE TABLE IF NOT EXISTS console_status_log(id INTEGER PRIMARY KEY, ${STATUS_LOG_COLUMNS});
CREATE INDEX IF NOT EXISTS console_status_log_device ON console_status_log(device, at);
CREATE TABLE IF NOT EXISTS console_stop_masks(token TEXT PRIMARY KEY, masked TEXT NOT NULL) WITHOUT ROWID;
`;

export function ensureConsoleSchema(db: Db): void {
  ensureExplicitId(db, 'console_status_log', STATUS_LOG_COLUMNS);
  db.exec(SCHEMA);
}

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
