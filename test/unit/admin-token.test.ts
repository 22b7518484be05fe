import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adminTokenName, writeAdminToken } from '../../sync-server/auth/service.js';
import { createToken, listTokens, tokenPrincipal } from '../../sync-server/auth/tokens.js';
import type { Db } from '../../sync-server/registry.js';
import { openTestRegistry } from '../support/test-db.js';

/**
 * DATA/admin.token, written at every start: a restart revokes the instance's previous token, but an instance starting
 * on a registry it shares with others (PostgreSQL, docs/postgres.md "Several instances") leaves theirs valid. Found by
 * failover-e2e.test.ts: the second instance's start had revoked the first one's token, so the first instance's local
 * CLI was refused (auth.unauthenticated).
 */
describe('the admin token of each instance', () => {
  let base: string;
  let db: Db;
  const token = (dataDir: string) => readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'rc-admin-token-'));
    db = openTestRegistry(join(base, 'registry'));
    for (const d of ['a', 'b']) mkdirSync(join(base, d));
  });
  afterEach(() => {
    db.close();
    rmSync(base, { recursive: true, force: true });
  });

  it("a second instance's start leaves the first one's token valid; a restart revokes the instance's own old one", () => {
    const a = join(base, 'a');
    const b = join(base, 'b');
    writeAdminToken(db, a);
    const first = token(a);
    writeAdminToken(db, b);
    expect(tokenPrincipal(db, first)).toMatchObject({ role: 'admin' }); // a's CLI still works
    expect(tokenPrincipal(db, token(b))).toMatchObject({ role: 'admin' });
    writeAdminToken(db, a); // a restarts
    expect(tokenPrincipal(db, first)).toBeNull();
    expect(tokenPrincipal(db, token(a))).toMatchObject({ role: 'admin' });
    const live = listTokens(db).filter((t) => t.revokedAt === null);
    expect(live.map((t) => t.name).sort()).toEqual([adminTokenName(a), adminTokenName(b)].sort());
  });

  it('the name tells instances apart by host and data dir; a token of the old shared name is revoked at the next start', () => {
    expect(adminTokenName('/var/lib/rc-sync', 'host-1')).toBe('admin-token host-1:/var/lib/rc-sync');
    expect(adminTokenName('/var/lib/rc-sync', 'host-2')).not.toBe(adminTokenName('/var/lib/rc-sync', 'host-1'));
    const old = createToken(db, { role: 'admin', name: 'admin-token' }).token;
    writeAdminToken(db, join(base, 'a'));
    expect(tokenPrincipal(db, old)).toBeNull();
  });
});
