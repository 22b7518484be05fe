import { copyFileSync, existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { openServerRegistry } from '../../sync-server/start/registry.js';
import { quietLogger } from '../support/log.js';
import { testDatabase } from '../support/test-db.js';

describe('the registry keeps the signing key it was made with', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const dataDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'rc-signkey-'));
    dirs.push(d);
    return d;
  };

  it('the same key opens it again; another key is refused with server.signing-key-mismatch and changes nothing', () => {
    const dir = dataDir();
    const database = testDatabase(dir); // SQLite in the data dir, or a PostgreSQL database with RC_TEST_DB=postgres
    const open = (d: string) => openServerRegistry({ dataDir: d, tokenKey: DEV_TOKEN_KEY, ...(database ? { database } : {}) }, quietLogger());
    const first = open(dir);
    const kept = first.db.prepare("SELECT value FROM meta WHERE key = 'signing-key'").pluck().get();
    expect(kept).toMatch(/^[0-9a-f]{64}$/);
    first.close();
    open(dir).close(); // a restart with its own key
    // the key file lost (a data dir restored without it, or a second instance's own): a new key is made, and refused
    const saved = join(dataDir(), 'saved.pem');
    copyFileSync(join(dir, 'signing-key.pem'), saved);
    unlinkSync(join(dir, 'signing-key.pem'));
    expect(() => open(dir)).toThrow(expect.objectContaining({ code: ErrorCode.ServerSigningKeyMismatch }));
    // the key made for that start and refused is not left in the data dir
    expect(existsSync(join(dir, 'signing-key.pem'))).toBe(false);
    expect(existsSync(join(dir, 'signing-key.pub.pem'))).toBe(false);
    copyFileSync(saved, join(dir, 'signing-key.pem')); // the refusal kept the registry's record: the first key opens it again
    const again = open(dir);
    expect(again.db.prepare("SELECT value FROM meta WHERE key = 'signing-key'").pluck().get()).toBe(kept);
    again.close();
    // on a shared PostgreSQL registry: a second instance with its own data dir and no copy of the key
    if (database) {
      const other = dataDir();
      expect(() => open(other)).toThrow(expect.objectContaining({ code: ErrorCode.ServerSigningKeyMismatch }));
      expect(existsSync(join(other, 'signing-key.pem'))).toBe(false);
      // its operator copies the first instance's key in: it starts
      copyFileSync(saved, join(other, 'signing-key.pem'));
      open(other).close();
    }
  });
});
