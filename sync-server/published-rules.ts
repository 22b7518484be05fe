import { RulesFile } from '../protocol/rules-schema.js';
import type { Db } from './registry.js';

/**
 * The rules a device of a kind (and school) gets, from the documents the operator published
 * (`rc-sync-server config set FILE [--name N]`): the general `rules`, then `rules-<kind>`, then
 * `rules-school-<id>`; each section (tariff / school / canteen / partners) comes from the last
 * of these that has it, the way the running device lets a more specific document replace its rules.
 * A document that does not validate is skipped. Null when none of them gives anything.
 */
function rulesDocNames(kind: string, school: string | null): string[] {
  return ['rules', `rules-${kind}`, ...(school ? [`rules-school-${school}`] : [])];
}

/** The published rules documents a device of this kind and school reads, least specific first, each validated (invalid ones skipped). */
function publishedDocs(db: Db, kind: string, school: string | null): { name: string; version: number; rules: RulesFile }[] {
  const get = db.prepare('SELECT version, doc FROM configs WHERE name = ?');
  const out: { name: string; version: number; rules: RulesFile }[] = [];
  for (const name of rulesDocNames(kind, school)) {
    const row = get.get(name) as { version: number; doc: string } | undefined;
    if (!row) continue;
    const r = RulesFile.safeParse(JSON.parse(row.doc));
    if (r.success) out.push({ name, version: row.version, rules: r.data });
  }
  return out;
}

export function publishedRulesFor(db: Db, kind: string, school: string | null): RulesFile | null {
  let out: RulesFile | null = null;
  for (const d of publishedDocs(db, kind, school)) out = { ...(out ?? {}), ...d.rules };
  return out;
}

type Section = 'tariff' | 'school' | 'canteen' | 'partners';

/** One section of the rules a device of this kind and school runs with, and the document (name, version) it comes from; null when none has it. */
export function publishedSectionFor<K extends Section>(
  db: Db,
  kind: string,
  school: string | null,
  section: K,
): { value: NonNullable<RulesFile[K]>; doc: string; version: number } | null {
  let out: { value: NonNullable<RulesFile[K]>; doc: string; version: number } | null = null;
  for (const d of publishedDocs(db, kind, school)) {
    const v = d.rules[section];
    if (v !== undefined) out = { value: v as NonNullable<RulesFile[K]>, doc: d.name, version: d.version };
  }
  return out;
}
