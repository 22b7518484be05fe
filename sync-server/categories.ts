import { rulesCategoryTable, withWireIds, type CategoryTable } from '../protocol/categories.js';
import { RulesFile } from '../protocol/rules-schema.js';
import type { Db } from './registry.js';

/**
 * Benefit categories on the server: their wire ids are server-wide (one transit
 * list serves every device), so they come from every rules document published.
 */

/** Every published config document that is a rules document, by name. */
export function publishedRules(db: Db): Map<string, RulesFile> {
  const out = new Map<string, RulesFile>();
  for (const r of db.prepare('SELECT name, doc FROM configs ORDER BY name').all() as { name: string; doc: string }[]) {
    const p = RulesFile.safeParse(JSON.parse(r.doc));
    if (p.success) out.set(r.name, p.data);
  }
  return out;
}

/** The strict wire table of every published rules document. */
export function publishedCategoryTable(db: Db): CategoryTable {
  return rulesCategoryTable([...publishedRules(db).values()]);
}

/** Ids of the benefit categories the published rules define (built in and the operator's), for the benefits import. */
export function publishedCategoryIds(db: Db): string[] {
  return publishedCategoryTable(db).ids();
}

/**
 * A rules document about to be stored under `name`, with the wire ids of its
 * categories: kept, or assigned server-wide (config.invalid when it renumbers or
 * drops one). A document that is not rules, or defines no category, is returned as it came.
 */
export function assignWireIds(db: Db, name: string, doc: unknown): unknown {
  const next = RulesFile.safeParse(doc);
  if (!next.success) return doc;
  const all = publishedRules(db);
  const current = all.get(name) ?? null;
  all.delete(name);
  const hasCats = (r: RulesFile | null) => Object.keys(r?.tariff?.categories ?? {}).length > 0;
  if (!hasCats(next.data) && !hasCats(current)) return doc;
  const out = withWireIds(current, next.data, [...all.values()]);
  const raw = doc as { tariff: Record<string, unknown> };
  return { ...raw, tariff: { ...raw.tariff, categories: out.tariff!.categories } };
}
