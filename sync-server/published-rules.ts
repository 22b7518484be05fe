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

export function publishedRulesFor(db: Db, kind: string, school: string | null): RulesFile | null {
  const get = db.prepare('SELECT doc FROM configs WHERE name = ?');
  let out: RulesFile | null = null;
  for (const name of rulesDocNames(kind, school)) {
    const row = get.get(name) as { doc: string } | undefined;
    if (!row) continue;
    const r = RulesFile.safeParse(JSON.parse(row.doc));
    if (!r.success) continue;
    out = { ...(out ?? {}), ...r.data };
  }
  return out;
}
