import type { ConfigDoc, ListsAnswer } from '../../protocol/console-api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Db } from '../registry.js';

/** Lists and versions page: each scope's current version, entries and the versions kept as deltas; the rules documents. */
export function listsOverview(db: Db): ListsAnswer {
  const scopes = db.prepare('SELECT scope, version, entries, records, updated_at FROM scopes ORDER BY scope').all() as {
    scope: string;
    version: number;
    entries: number;
    records: number;
    updated_at: string;
  }[];
  const versions = db.prepare('SELECT to_v AS version, records, created_ms FROM deltas WHERE scope = ? ORDER BY to_v DESC LIMIT 20');
  return {
    scopes: scopes.map((s) => ({
      scope: s.scope,
      version: s.version,
      entries: s.entries,
      records: s.records,
      updatedAt: s.updated_at,
      versions: (versions.all(s.scope) as { version: number; records: number; created_ms: number }[]).map((v) => ({
        version: v.version,
        records: v.records,
        publishedAt: new Date(v.created_ms).toISOString(),
      })),
    })),
    configs: (db.prepare('SELECT name, version, updated_at AS "updatedAt" FROM configs ORDER BY name').all() as ListsAnswer['configs']).map((c) => ({ ...c })),
  };
}

/** The current rules document of that name; server.not-found (404) when none was published. */
export function currentConfig(db: Db, name: string): ConfigDoc {
  const r = db.prepare('SELECT name, version, doc, updated_at FROM configs WHERE name = ?').get(name) as
    { name: string; version: number; doc: string; updated_at: string } | undefined;
  if (!r) throw new RcError(ErrorCode.ServerNotFound, `no rules document "${name}" was published`, { name });
  return { name: r.name, version: r.version, updatedAt: r.updated_at, rules: JSON.parse(r.doc) as unknown };
}
