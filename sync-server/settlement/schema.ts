import type { Db } from '../registry.js';

/**
 * Settlement's own indexes, created when the registry opens (added after schema 3; no schema bump needed):
 *  - day_totals_close: the open days in the order they are closed (day, first tap), so closing walks the index
 *    a few hundred at a time instead of sorting every open day on each pass.
 */
export function ensureSettlementSchema(db: Db): void {
  db.exec('CREATE INDEX IF NOT EXISTS day_totals_close ON day_totals(closed, service_day, first_ms, first_device, first_seq)');
}
