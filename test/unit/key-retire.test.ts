/**
 * key-retire.ts on a registry file, with a key store standing in for the server's token: what counts as the
 * version still being used by the published lists (entries of its cards, entries of no current card, a pending
 * recomputation), the stop-list tokens it cannot attribute, and a key the token fails to destroy leaving the
 * version not retired.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestRegistry } from '../support/test-db.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { markRecompute } from '../../sync-server/import.js';
import { keyVersionUse, retireKeyVersion, type KeyStore } from '../../sync-server/key-retire.js';
import { type Db } from '../../sync-server/registry.js';
import { checkKeyScheme, retiredKeyVersion } from '../../sync-server/tokenize.js';
import { expectRcError } from '../support/errors.js';

const tok = (n: number) => n.toString(16).padStart(32, '0');

describe('retiring a key version: what still uses it', () => {
  let dir: string;
  let db: Db;
  let held: number[];
  const store = (): KeyStore => ({
    versions: [...held],
    destroy: (v) => {
      const had = held.includes(v);
      held = held.filter((x) => x !== v);
      return had;
    },
  });
  const card = (person: string, token: string, version: number) =>
    db.prepare("INSERT INTO cards(person_id, token, key_version, expiry, updated_at) VALUES (?, ?, ?, '2030-01', '2026-01-01')").run(person, token, version);
  const entry = (scope: string, token: string) => db.prepare('INSERT INTO entries(scope, token, rec) VALUES (?, ?, ?)').run(scope, token, Buffer.from([1]));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rc-key-retire-unit-'));
    db = openTestRegistry(dir);
    held = [1, 2];
    checkKeyScheme(db, 1, 'pan-expiry');
    checkKeyScheme(db, 2, 'pan-expiry'); // the server now runs on v2
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('transit and school entries of no current card (lists not recomputed yet) block it: their version is unknown', () => {
    card('P-1', tok(1), 2);
    entry('transit', tok(1));
    entry('school:7', tok(99)); // a card re-imported since: its old token is still published
    expect(keyVersionUse(db, 1)).toMatchObject({ cards: 0, listEntries: 0, staleEntries: 1 });
    const e = expectRcError(() => retireKeyVersion(db, 1, store(), 'cli:test'), ErrorCode.TokenKeyVersionInUse);
    expect(e.context).toMatchObject({ staleEntries: 1 });
    expect(held).toEqual([1, 2]);
    expect(retiredKeyVersion(db, 1)).toBeNull();
  });

  it('an import whose recomputation is pending blocks it', () => {
    markRecompute(db, ['transit']);
    const e = expectRcError(() => retireKeyVersion(db, 1, store(), 'cli:test'), ErrorCode.TokenKeyVersionInUse);
    expect(e.context).toMatchObject({ pendingRecompute: ['transit'] });
  });

  it('a stop-list entry of a v1 card blocks it; stop-list tokens of no card are counted, not refused', () => {
    card('P-1', tok(1), 1);
    entry('stoplist', tok(1));
    db.prepare('DELETE FROM cards').run();
    card('P-1', tok(2), 2); // re-imported under v2: the stop-list row by the v1 token stays
    entry('stoplist', tok(3)); // stop-listed by token
    expect(keyVersionUse(db, 1)).toMatchObject({ cards: 0, listEntries: 0, stopListUnattributed: 2 });
    const r = retireKeyVersion(db, 1, store(), 'cli:test');
    expect(r).toMatchObject({ version: 1, alreadyRetired: false, keyDestroyed: true, use: { stopListUnattributed: 2 } });
    expect(held).toEqual([2]);
  });

  it('a key the token fails to destroy leaves the version not retired (refusal audited)', () => {
    const failing: KeyStore = {
      versions: [1, 2],
      destroy: () => {
        throw new RcError(ErrorCode.TokenHsmUnavailable, 'PKCS#11: token removed');
      },
    };
    expectRcError(() => retireKeyVersion(db, 1, failing, 'cli:test'), ErrorCode.TokenHsmUnavailable);
    expect(retiredKeyVersion(db, 1)).toBeNull();
    expect(db.prepare("SELECT result FROM audit WHERE action = 'token-key.retire'").pluck().all()).toEqual([ErrorCode.TokenHsmUnavailable]);
    // tried again with the token back: retired, and a server then refuses v1
    expect(retireKeyVersion(db, 1, store(), 'cli:test').keyDestroyed).toBe(true);
    expectRcError(() => checkKeyScheme(db, 1, 'pan-expiry'), ErrorCode.TokenKeyVersionRetired);
  });

  it('a registry from before the in-use record: the newest version it recorded a scheme for is current', () => {
    db.prepare("DELETE FROM meta WHERE key = 'token.key-version'").run();
    expectRcError(() => retireKeyVersion(db, 2, { versions: null, destroy: () => false }, 'cli:test'), ErrorCode.TokenKeyVersionCurrent);
    expect(retireKeyVersion(db, 1, { versions: null, destroy: () => false }, 'cli:test')).toMatchObject({ keyDestroyed: false });
  });
});
