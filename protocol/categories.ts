import { ErrorCode, RcError } from './errors.js';
import { BENEFIT_CATEGORIES } from './lists.js';
import type { RulesFile, Tariff } from './rules-schema.js';

/**
 * Benefit categories as data. The operator defines a category in the published
 * rules (`tariff.categories`: id, names in Russian and English; its fare rule in
 * `tariff.benefits`). The 24-byte list records carry a one-byte wire id: the
 * eight built-in categories keep their historical ids 0..7 (their index in
 * `BENEFIT_CATEGORIES`), a new category gets the next free id from the server
 * when it first appears in the rules (`withWireIds`), and an id is never
 * renumbered or reused. Devices map wire id ↔ category id through the rules
 * they hold (`categoryTable`).
 */
export const MAX_WIRE_ID = 254; // 0xff is "no benefit" in a record
export const BUILT_IN_WIRE_IDS = BENEFIT_CATEGORIES.length;

export const BUILT_IN_NAMES: Readonly<Record<string, { ru: string; en: string }>> = {
  pensioner: { ru: 'пенсионер', en: 'pensioner' },
  disabled: { ru: 'инвалид', en: 'disabled person' },
  'disabled-child': { ru: 'ребёнок-инвалид', en: 'disabled child' },
  veteran: { ru: 'ветеран', en: 'veteran' },
  'large-family': { ru: 'многодетная семья', en: 'large family' },
  schoolchild: { ru: 'школьник', en: 'schoolchild' },
  student: { ru: 'студент', en: 'student' },
  'low-income': { ru: 'малоимущие', en: 'low income' },
};

export interface CategoryTable {
  toWire(id: string): number | undefined;
  fromWire(wireId: number): string | undefined;
  /** Every category id the table knows (built in and defined). */
  ids(): string[];
}

type CategoryDefs = Tariff['categories'] | undefined;

export function builtInWireId(id: string): number | undefined {
  const i = (BENEFIT_CATEGORIES as readonly string[]).indexOf(id);
  return i < 0 ? undefined : i;
}

/** The wire table of a tariff's categories: the built-in ones plus every defined category that has a wire id. */
export function categoryTable(defs?: CategoryDefs): CategoryTable {
  const to = new Map<string, number>();
  const from = new Map<number, string>();
  BENEFIT_CATEGORIES.forEach((c, i) => {
    to.set(c, i);
    from.set(i, c);
  });
  for (const [id, d] of Object.entries(defs ?? {})) {
    if (d.wireId === undefined || to.has(id)) continue;
    to.set(id, d.wireId);
    from.set(d.wireId, id);
  }
  return { toWire: (id) => to.get(id), fromWire: (w) => from.get(w), ids: () => [...to.keys()] };
}

/** The table for rules a device or the server holds (the built-in categories only when there is no tariff). */
export function rulesCategoryTable(rules: { tariff?: Tariff | undefined } | null | undefined): CategoryTable {
  return categoryTable(rules?.tariff?.categories);
}

export const BUILT_IN_TABLE = categoryTable();

/**
 * The server's step when the operator sets new rules: keeps every wire id the
 * current rules published, refuses (config.invalid) a document that renumbers or
 * drops one, and gives each new category the next id never used.
 */
export function withWireIds(current: RulesFile | null, next: RulesFile): RulesFile {
  const prev = current?.tariff?.categories ?? {};
  if (!next.tariff) {
    if (Object.keys(prev).length)
      throw new RcError(ErrorCode.ConfigInvalid, 'the new rules drop the tariff and with it categories whose wire ids are in use', {
        categories: Object.keys(prev),
      });
    return next;
  }
  const cats = { ...next.tariff.categories };
  let top = BUILT_IN_WIRE_IDS - 1;
  for (const d of Object.values(prev)) if (d.wireId !== undefined) top = Math.max(top, d.wireId);
  for (const [id, d] of Object.entries(prev)) {
    if (d.wireId === undefined || builtInWireId(id) !== undefined) continue;
    const n = cats[id];
    if (!n)
      throw new RcError(ErrorCode.ConfigInvalid, `the new rules drop category ${id}, whose wire id ${d.wireId} is in use`, { category: id, wireId: d.wireId });
    if (n.wireId !== undefined && n.wireId !== d.wireId)
      throw new RcError(ErrorCode.ConfigInvalid, `the new rules renumber category ${id} (wire id ${d.wireId} → ${n.wireId})`, {
        category: id,
        wireId: d.wireId,
        offered: n.wireId,
      });
    cats[id] = { ...n, wireId: d.wireId };
  }
  const taken = new Map<number, string>();
  for (const [id, d] of Object.entries(cats)) if (d.wireId !== undefined) taken.set(d.wireId, id);
  for (const [id, d] of Object.entries(cats)) {
    if (builtInWireId(id) !== undefined) {
      cats[id] = { ...d, wireId: builtInWireId(id) };
      continue;
    }
    if (d.wireId !== undefined) {
      const before = Object.entries(prev).find(([, p]) => p.wireId === d.wireId);
      if (before && before[0] !== id)
        throw new RcError(ErrorCode.ConfigInvalid, `wire id ${d.wireId} belongs to category ${before[0]}, not ${id}`, { category: id, wireId: d.wireId });
      top = Math.max(top, d.wireId);
      continue;
    }
    do top++;
    while (taken.has(top));
    if (top > MAX_WIRE_ID) throw new RcError(ErrorCode.ConfigInvalid, 'no wire id left for a new category', { category: id });
    cats[id] = { ...d, wireId: top };
    taken.set(top, id);
  }
  return { ...next, tariff: { ...next.tariff, categories: cats } };
}
