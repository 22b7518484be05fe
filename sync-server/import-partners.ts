import { z } from 'zod';
import { PartnerCategory, PartnerId } from '../protocol/ids.js';
import type { Db } from './registry.js';

/**
 * `rc-sync-server import partners FILE` (issue 14 item 3): partner_id,partner_name,category,discount.
 * Partners feed enrolment (a partner device names one) and the partners report; no list changes.
 * The discount is what the partner agreed to give residents (percent); the devices show the one of the
 * published partner rules for the partner's category.
 */
export const PARTNER_COLUMNS = ['partner_id', 'partner_name', 'category', 'discount'];

export const PartnerRow = z.object({
  partner_id: PartnerId,
  partner_name: z.string().min(1, 'partner name is empty').max(200),
  category: PartnerCategory,
  discount: z
    .string()
    .regex(/^(100|\d{1,2})$/, 'discount: a whole percent 0-100')
    .transform(Number),
});

export interface PartnerParsed {
  kind: 'partners';
  id: string;
  name: string;
  category: string;
  discount: number;
}

export function partnerParsed(d: Record<string, unknown>): PartnerParsed {
  return { kind: 'partners', id: d.partner_id as string, name: d.partner_name as string, category: d.category as string, discount: d.discount as number };
}

/** Insert or update the partners (inside the import's transaction). */
export function applyPartners(db: Db, rows: readonly { kind: string }[], now: string): void {
  const up = db.prepare(
    'INSERT INTO partners(id, name, category, discount_percent, updated_at) VALUES (?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET name=excluded.name, category=excluded.category, discount_percent=excluded.discount_percent, updated_at=excluded.updated_at',
  );
  for (const r of rows)
    if (r.kind === 'partners') up.run((r as PartnerParsed).id, (r as PartnerParsed).name, (r as PartnerParsed).category, (r as PartnerParsed).discount, now);
}
