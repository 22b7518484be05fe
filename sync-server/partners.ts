import type { Db } from './registry.js';

/**
 * Partners (shops, museums, theatres that give residents a discount; issue 14 item 3): imported like
 * carriers (`rc-sync-server import partners FILE`: id, name, category, discount), read by enrolment
 * (a partner device names one) and by the partners report. Their devices' identities carry the partner id.
 */
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
