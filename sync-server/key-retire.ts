import { ErrorCode, RcError } from '../protocol/errors.js';
import { writeAudit } from './audit.js';
import { pendingRecompute } from './import.js';
import type { Db } from './registry.js';
import { retiredKeyVersion } from './tokenize.js';

/**
 * Retiring a card-token key version (rc-sync-server key retire, docs/token-key.md "Retiring a version"). A version
 * may be retired once nothing needs it any more:
 *  - it is not the current version: the newest in the server's token (what `start` uses by default) nor the one the
 *    server last started with (meta 'token.key-version', written by tokenize.ts checkKeyScheme);
 *  - no card of the registry carries a token of it (cards.key_version);
 *  - no entry of the published lists carries one: an entry whose token is a card of that version, or an entry of a
 *    card-derived scope (transit, schools) whose token is no current card's (the lists are not yet recomputed after a
 *    re-import: its version is unknown), or an import's recompute still pending.
 * Stop-list tokens that are no card's (stop-listed by token, or a card since re-tokenised) carry no version the
 * registry knows: they are counted (stopListUnattributed), not refused.
 * Then it is recorded in token_key_retired (a server refuses to start with it, so it is never handed to a device
 * again) and its key is destroyed in the server's token.
 */
export interface KeyVersionUse {
  cards: number;
  /** Published entries whose token is a card of that version. */
  listEntries: number;
  /** Entries of transit and school lists whose token is no current card's (lists not recomputed since the cards changed). */
  staleEntries: number;
  /** Scopes an import changed and the publisher has not recomputed yet. */
  pendingRecompute: string[];
  /** Stop-list tokens of no card: their key version is unknown to the registry. */
  stopListUnattributed: number;
}

export interface RetireResult {
  version: number;
  retiredAt: string;
  /** It was retired before (the key, if still in the token, is destroyed now). */
  alreadyRetired: boolean;
  /** The key was destroyed in the server's token now (false: no token given, or it held no key of that version). */
  keyDestroyed: boolean;
  use: KeyVersionUse;
}

export function keyVersionUse(db: Db, version: number): KeyVersionUse {
  const count = (stmt: ReturnType<Db['prepare']>, ...args: unknown[]) => stmt.pluck().get(...args) as number;
  return {
    cards: count(db.prepare('SELECT count(*) FROM cards WHERE key_version = ?'), version),
    listEntries: count(db.prepare('SELECT count(*) FROM entries e JOIN cards c ON c.token = e.token WHERE c.key_version = ?'), version),
    staleEntries: count(
      db.prepare("SELECT count(*) FROM entries e WHERE e.scope != 'stoplist' AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.token = e.token)"),
    ),
    pendingRecompute: pendingRecompute(db),
    stopListUnattributed: count(
      db.prepare("SELECT count(*) FROM entries e WHERE e.scope = 'stoplist' AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.token = e.token)"),
    ),
  };
}

/** The versions `start` would use or last used: the newest in the token (when it is given) and the one last started with. */
export function currentKeyVersions(db: Db, tokenVersions: readonly number[] | null): number[] {
  const started = db.prepare("SELECT value FROM meta WHERE key = 'token.key-version'").pluck().get() as string | undefined;
  // a registry from before the record: the newest version it recorded a scheme for
  const last = started !== undefined ? Number(started) : (db.prepare('SELECT max(version) FROM token_key_schemes').pluck().get() as number | null);
  const newest = tokenVersions?.at(-1);
  return [...new Set([last, newest].filter((v): v is number => typeof v === 'number'))].sort((a, b) => a - b);
}

export interface KeyStore {
  /** The versions in the server's token, ascending; null when the key is not kept in one (RC_TOKEN_KEY). */
  versions: readonly number[] | null;
  /** Destroy the key of the version in the token: false when it holds none. */
  destroy(version: number): boolean;
}

/**
 * Check and record the retirement of `version`, and destroy its key in the server's token, in one registry
 * transaction with its audit row (a refusal is audited too): a key that cannot be destroyed leaves the version
 * not retired, and retiring again destroys a key a retired version left in the token.
 */
export function retireKeyVersion(db: Db, version: number, store: KeyStore, who: string, now = new Date()): RetireResult {
  const tokenVersions = store.versions;
  const audit = (result: string, detail: Record<string, unknown>) =>
    writeAudit(db, { who, role: null, source: 'local', action: 'token-key.retire', detail: { version, ...detail }, result }, now);
  try {
    return db.transaction((): RetireResult => {
      const use = keyVersionUse(db, version);
      const before = retiredKeyVersion(db, version);
      if (before !== null) {
        const keyDestroyed = store.destroy(version);
        audit('ok', { alreadyRetired: true, keyDestroyed });
        return { version, retiredAt: before, alreadyRetired: true, keyDestroyed, use };
      }
      const current = currentKeyVersions(db, tokenVersions);
      if (current.includes(version))
        throw new RcError(ErrorCode.TokenKeyVersionCurrent, `key version ${version} is the current one: rotate to a new version first`, {
          version,
          current,
        });
      const known =
        (tokenVersions?.includes(version) ?? false) ||
        db.prepare('SELECT 1 FROM token_key_schemes WHERE version = ?').get(version) !== undefined ||
        use.cards > 0;
      if (!known)
        throw new RcError(ErrorCode.TokenKeyVersionUnknown, `no key version ${version} in the server's token or the registry`, {
          version,
          ...(tokenVersions ? { tokenVersions } : {}),
        });
      if (use.cards > 0 || use.listEntries > 0 || use.staleEntries > 0 || use.pendingRecompute.length > 0)
        throw new RcError(
          ErrorCode.TokenKeyVersionInUse,
          `key version ${version} is still in use: ${use.cards} card(s) in the registry, ${use.listEntries + use.staleEntries} published list entr(ies)` +
            (use.pendingRecompute.length > 0 ? `, lists not yet recomputed (${use.pendingRecompute.join(', ')})` : '') +
            ': re-import the cards under the new version and let the server publish',
          { version, ...use },
        );
      const at = now.toISOString();
      db.prepare('INSERT INTO token_key_retired(version, retired_at, retired_by) VALUES (?, ?, ?)').run(version, at, who);
      const keyDestroyed = store.destroy(version);
      audit('ok', { keyDestroyed, stopListUnattributed: use.stopListUnattributed });
      return { version, retiredAt: at, alreadyRetired: false, keyDestroyed, use };
    })();
  } catch (e) {
    // the refusal is audited outside the rolled-back transaction
    audit(e instanceof RcError ? e.code : 'error', {});
    throw e;
  }
}
