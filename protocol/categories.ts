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

export interface CategoryTable {
  /** The wire id of a category (or of a `wire-<n>` stand-in); undefined for a category the rules do not define. */
  toWire(id: string): number | undefined;
  /** The category of a wire id; a wire id the rules do not define comes back as its stand-in `wire-<n>`, which no tariff prices. */
  fromWire(wireId: number): string | undefined;
  /** Every category id the table knows (built in and defined). */
  ids(): string[];
}

type CategoryDefs = Tariff['categories'] | undefined;

export function builtInWireId(id: string): number | undefined {
  const i = (BENEFIT_CATEGORIES as readonly string[]).indexOf(id);
  return i < 0 ? undefined : i;
}

/**
 * The stand-in id (on a device) of a wire id that the rules it holds do not define (yet):
 * a list from a server whose other rules define more categories still applies,
 * the entry gives no benefit here, and it keeps its wire id, so the category
 * shows up by its name once the device's rules define it.
 */
export const wireStandIn = (wireId: number): string => `wire-${wireId}`;
const STAND_IN = /^wire-(\d{1,3})$/;

/**
 * The wire table of categories: the built-in ones plus every defined category that
 * has a wire id (from one or more rules documents). Strict by default (an undefined
 * wire id is refused by the codec); `standIns` is the device's table, which reads an
 * undefined wire id as its stand-in `wire-<n>`.
 */
export function categoryTable(defs: readonly CategoryDefs[] = [], opts: { standIns?: boolean } = {}): CategoryTable {
  const to = new Map<string, number>();
  const from = new Map<number, string>();
  BENEFIT_CATEGORIES.forEach((c, i) => {
    to.set(c, i);
    from.set(i, c);
  });
  for (const d of defs)
    for (const [id, c] of Object.entries(d ?? {})) {
      if (c.wireId === undefined || to.has(id) || from.has(c.wireId)) continue;
      to.set(id, c.wireId);
      from.set(c.wireId, id);
    }
  return {
    toWire: (id) => {
      const w = to.get(id);
      if (w !== undefined) return w;
      const m = opts.standIns ? STAND_IN.exec(id) : null;
      return m && Number(m[1]) <= MAX_WIRE_ID ? Number(m[1]) : undefined;
    },
    fromWire: (w) => from.get(w) ?? (opts.standIns && Number.isInteger(w) && w >= 0 && w <= MAX_WIRE_ID ? wireStandIn(w) : undefined),
    ids: () => [...to.keys()],
  };
}

type RulesLike = { tariff?: Tariff | undefined } | null | undefined;

/** The strict table of the rules documents the server holds (the built-in categories only when there is no tariff). */
export function rulesCategoryTable(rules: readonly RulesLike[]): CategoryTable {
  return categoryTable(rules.map((r) => r?.tariff?.categories));
}

/** The table of the rules a device holds: with stand-ins for wire ids they do not define. */
export function deviceCategoryTable(rules: RulesLike): CategoryTable {
  return categoryTable([rules?.tariff?.categories], { standIns: true });
}

export const BUILT_IN_TABLE = categoryTable();
/** A device's table before it holds rules defining categories. */
export const DEVICE_BUILT_IN_TABLE = categoryTable([], { standIns: true });

/**
 * The server's step when the operator sets new rules: keeps every wire id the
 * current rules of that name published, refuses (config.invalid) a document that
 * renumbers or drops one, and gives each new category the id its other rules
 * documents (`others`) already gave it, or else the next id never used. Wire ids
 * are server-wide: one transit list serves every device.
 */
export function withWireIds(current: RulesFile | null, next: RulesFile, others: readonly (RulesFile | null)[] = []): RulesFile {
  const prev = current?.tariff?.categories ?? {};
  const known = new Map<string, number>(); // id -> wire id, across all published rules
  let top = BUILT_IN_WIRE_IDS - 1;
  for (const r of [current, ...others])
    for (const [id, d] of Object.entries(r?.tariff?.categories ?? {}))
      if (d.wireId !== undefined && builtInWireId(id) === undefined) {
        if (!known.has(id)) known.set(id, d.wireId);
        top = Math.max(top, d.wireId);
      }
  const owner = new Map([...known].map(([id, w]) => [w, id]));
  if (!next.tariff) {
    const inUse = Object.keys(prev).filter((id) => builtInWireId(id) === undefined);
    if (inUse.length)
      throw new RcError(ErrorCode.ConfigInvalid, 'the new rules drop the tariff and with it categories whose wire ids are in use', { categories: inUse });
    return next;
  }
  const cats = { ...next.tariff.categories };
  for (const [id, d] of Object.entries(prev)) {
    if (d.wireId === undefined || builtInWireId(id) !== undefined) continue;
    if (!cats[id])
      throw new RcError(ErrorCode.ConfigInvalid, `the new rules drop category ${id}, whose wire id ${d.wireId} is in use`, { category: id, wireId: d.wireId });
  }
  for (const [id, d] of Object.entries(cats)) {
    const fixed = builtInWireId(id) ?? known.get(id);
    if (fixed !== undefined) {
      if (d.wireId !== undefined && d.wireId !== fixed)
        throw new RcError(ErrorCode.ConfigInvalid, `the new rules renumber category ${id} (wire id ${fixed} → ${d.wireId})`, {
          category: id,
          wireId: fixed,
          offered: d.wireId,
        });
      cats[id] = { ...d, wireId: fixed };
      continue;
    }
    if (d.wireId !== undefined) {
      const o = owner.get(d.wireId);
      if (o !== undefined || d.wireId < BUILT_IN_WIRE_IDS)
        throw new RcError(ErrorCode.ConfigInvalid, `wire id ${d.wireId} belongs to category ${o ?? BENEFIT_CATEGORIES[d.wireId]}, not ${id}`, {
          category: id,
          wireId: d.wireId,
        });
      owner.set(d.wireId, id);
      top = Math.max(top, d.wireId);
    }
  }
  for (const [id, d] of Object.entries(cats)) {
    if (d.wireId !== undefined) continue;
    do top++;
    while (owner.has(top));
    if (top > MAX_WIRE_ID) throw new RcError(ErrorCode.ConfigInvalid, 'no wire id left for a new category', { category: id });
    cats[id] = { ...d, wireId: top };
    owner.set(top, id);
  }
  return { ...next, tariff: { ...next.tariff, categories: cats } };
}
