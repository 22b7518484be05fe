import type { Db } from './registry.js';

/**
 * Partners (shops, museums, theatres that give residents a discount; issue 14 item 3): imported like
 * carriers (`rc-sync-server import partners FILE`: id, name, category, discount), read by enrolment
 * (a partner device names one) and by the partners report. Their devices' identities carry the partner id.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS partners(id TEXT PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, discount_percent INTEGER NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID;
`;

/** The partner tables, and a `partner` column on enrolment tokens and device identities; idempotent (openRegistry runs it). */
export function ensurePartnerSchema(db: Db): void {
  db.exec(SCHEMA);
  // the device tables may not exist yet (DeviceRegistry creates them): then initDeviceTables calls this again
  for (const table of ['enrol_tokens', 'device_identities']) {
    const cols = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
    if (cols.length > 0 && !cols.some((c) => c.name === 'partner')) db.exec(`ALTER TABLE ${table} ADD COLUMN partner TEXT`);
  }
}

export interface Partner {
  id: string;
  name: string;
  category: string;
  /** The discount the partner agreed to give residents, percent (the device shows the published rules' one). */
  discountPercent: number;
}

export function getPartner(db: Db, id: string): Partner | null {
  const r = db.prepare('SELECT id, name, category, discount_percent FROM partners WHERE id = ?').get(id) as
    { id: string; name: string; category: string; discount_percent: number } | undefined;
  return r ? { id: r.id, name: r.name, category: r.category, discountPercent: r.discount_percent } : null;
}

export function allPartners(db: Db): Partner[] {
  return (db.prepare('SELECT id FROM partners ORDER BY id').pluck().all() as string[]).map((id) => getPartner(db, id)!);
}
