/**
 * Retiring a card-token key version (docs/token-key.md, "Retiring a version") with the built CLI
 * (dist/rc-sync-server.js; `npm run build` first) on a SoftHSM token and a real registry written by a real server:
 * `key retire --version 1` is refused while v1 is the current version, then while cards and published list entries
 * carry v1 tokens; after the re-import under v2 and its publication it retires v1, destroys its key in the token and
 * writes an audit row; a server no longer starts with v1, so no device is given it again.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { Pkcs11Token } from '../../protocol/token-hsm.js';
import { pendingRecompute } from '../../sync-server/import.js';
import { startServer, type RunningServer } from '../../sync-server/server.js';
import { expectRcError } from '../support/errors.js';
import { quietLogger } from '../support/log.js';
import { PAN } from '../support/pans.js';
import { softhsmAvailable, startSoftHsm, type SoftHsmRig } from '../support/rig/softhsm.js';
import { dbOption, linesOf } from '../support/sync-harness.js';
import { openTestRegistry, withTestDatabase } from '../support/test-db.js';
import { waitFor } from '../support/wait.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'dist', 'rc-sync-server.js');
const CARDS = `person_id,pan,expiry\nP-ANNA,${PAN.pensioner},2029-06\nP-OLEG,${PAN.student},2030-01\n`;
const BENEFITS = 'person_id,category,valid_from,valid_to\nP-ANNA,pensioner,2020-01-01,2030-12-31\n';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown>;
}

describe.skipIf(!softhsmAvailable())('retiring a card-token key version', () => {
  const work = mkdtempSync(join(tmpdir(), 'rc-key-retire-'));
  const data = join(work, 'data');
  const pinFile = join(work, 'server.pin');
  const log = quietLogger();
  let hsm: SoftHsmRig;
  let session: Pkcs11Token;
  let server: RunningServer | null = null;
  const pk = () => ['--pkcs11-library', hsm.library, '--pkcs11-token', 'rc-server', '--pkcs11-pin-file', pinFile];

  function cli(args: string[]): Promise<Run> {
    const child = spawn(process.execPath, [BIN, ...withTestDatabase(args, work)], {
      cwd: work,
      env: { ...process.env, RC_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    return new Promise((resolve) =>
      child.on('close', (code) => {
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(stdout) as Record<string, unknown>;
        } catch {
          /* not --json */
        }
        resolve({ code, stdout, stderr, json });
      }),
    );
  }
  const retire = (version: string, dir = data, withToken = true) =>
    cli(['keys', 'retire', '--version', version, '--data', dir, '--json', ...(withToken ? pk() : [])]);
  const errorOf = (r: Run) => (r.json.error ?? {}) as { code?: string; context?: Record<string, unknown> };
  const audits = () => {
    const db = openTestRegistry(data);
    try {
      return db.prepare("SELECT who, source, detail, result FROM audit WHERE action = 'token-key.retire' ORDER BY seq").all() as {
        who: string;
        source: string;
        detail: string;
        result: string;
      }[];
    } finally {
      db.close();
    }
  };
  const serverOn = (version: number) => startServer({ dataDir: data, mqttPort: 0, httpPort: 0, tokenKey: { version, hsm: session }, log, ...dbOption(data) });

  beforeAll(async () => {
    hsm = startSoftHsm('rc-server', '1234');
    writeFileSync(pinFile, '1234\n', { mode: 0o600 });
    expect((await cli(['key', 'rotate', ...pk()])).code).toBe(0); // v1, the installation's first key
    session = Pkcs11Token.open(hsm);
    expect(session.keyVersions()).toEqual([1]);
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    session?.close();
    hsm?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('the current version is refused, and a version nobody had is unknown', async () => {
    server = await serverOn(1);
    await server.api.importCsv('cards', linesOf(CARDS), false);
    await server.api.importCsv('benefits', linesOf(BENEFITS), false);
    await server.close();
    server = null;

    const r = await retire('1');
    expect(r.code).toBe(1);
    expect(errorOf(r)).toMatchObject({ code: ErrorCode.TokenKeyVersionCurrent, context: { version: 1, current: [1] } });
    expect(errorOf(await retire('7'))).toMatchObject({ code: ErrorCode.TokenKeyVersionUnknown, context: { tokenVersions: [1] } });
    expect(errorOf(await retire('zero'))).toMatchObject({ code: ErrorCode.InputInvalid });
    expect(session.keyVersions()).toEqual([1]);
  }, 240_000);

  it('after the rotation, refused until the server runs on v2, then while cards and published entries carry v1 tokens', async () => {
    expect((await cli(['key', 'rotate', ...pk()])).stdout).toContain('card-token key version 2');
    // the server still runs on v1 (not restarted): v1 is still the current version
    expect(errorOf(await retire('1'))).toMatchObject({ code: ErrorCode.TokenKeyVersionCurrent, context: { current: [1, 2] } });

    server = await serverOn(2);
    const r = await retire('1');
    expect(r.code).toBe(1);
    // two cards under v1; transit holds both, the pensioner's benefit included
    expect(errorOf(r)).toMatchObject({ code: ErrorCode.TokenKeyVersionInUse, context: { version: 1, cards: 2, listEntries: 2, staleEntries: 0 } });
    expect(session.keyVersions()).toEqual([1, 2]);
  }, 240_000);

  it('after the re-import under v2 and its publication, v1 is retired: its key is destroyed in the token and an audit row written', async () => {
    const s = server!;
    await s.api.importCsv('cards', linesOf(CARDS), false);
    expect(s.db.prepare('SELECT DISTINCT key_version FROM cards').pluck().all()).toEqual([2]);
    await waitFor(() => pendingRecompute(s.db).length === 0, { timeoutMs: 15_000, what: 'the lists recomputed after the re-import' });

    const r = await retire('1');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({
      version: 1,
      alreadyRetired: false,
      keyDestroyed: true,
      keyStore: 'pkcs11',
      use: { cards: 0, listEntries: 0, staleEntries: 0, pendingRecompute: [], stopListUnattributed: 0 },
    });
    expect((await cli(['key', 'list', ...pk()])).stdout.trim()).toBe('2');
    expect(session.keyVersions()).toEqual([2]);
    // the key cannot be wrapped for any device any more
    const device = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expectRcError(() => session.wrapKeyFor(1, device), ErrorCode.TokenHsmKeyMissing);

    // again: nothing to do, said so
    expect((await retire('1')).json).toMatchObject({ version: 1, alreadyRetired: true, keyDestroyed: false });
    const rows = audits();
    expect(rows.map((a) => a.result)).toEqual([
      ErrorCode.TokenKeyVersionCurrent,
      ErrorCode.TokenKeyVersionUnknown,
      ErrorCode.TokenKeyVersionCurrent,
      ErrorCode.TokenKeyVersionInUse,
      'ok',
      'ok',
    ]);
    expect(rows.every((a) => a.source === 'local' && a.who.startsWith('cli'))).toBe(true);
    expect(JSON.parse(rows[4]!.detail)).toMatchObject({ version: 1, keyDestroyed: true });
    for (const a of rows) expect(a.detail).not.toContain(PAN.pensioner);
  }, 240_000);

  it('a server no longer starts with the retired version (so no device is given it), the current one still does', async () => {
    await server!.close();
    server = null;
    // RC_TOKEN_KEY of version 1 (a copy of the key kept elsewhere): refused before anything is tokenised or enrolled
    const e = await expectRcError(
      startServer({ dataDir: data, mqttPort: 0, httpPort: 0, tokenKey: { version: 1, key: randomBytes(32) }, log, ...dbOption(data) }),
      ErrorCode.TokenKeyVersionRetired,
    );
    expect(e.context).toMatchObject({ keyVersion: 1 });
    server = await serverOn(2);
    expect(server.db.prepare('SELECT count(*) FROM cards WHERE key_version = 2').pluck().get()).toBe(2);
  }, 240_000);

  it('a server on RC_TOKEN_KEY keeps no key: the version is retired in the registry only, and said so', async () => {
    const soft = join(work, 'soft');
    for (const version of [1, 2]) {
      const s = await startServer({ dataDir: soft, mqttPort: 0, httpPort: 0, tokenKey: { version, key: randomBytes(32) }, log, ...dbOption(soft) });
      await s.close();
    }
    const r = await retire('1', soft, false);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ version: 1, alreadyRetired: false, keyDestroyed: false, keyStore: 'none' });
    const text = await cli(['key', 'retire', '--version', '1', '--data', soft]);
    expect(text.stdout).toContain('was retired already');
    await expectRcError(
      startServer({ dataDir: soft, mqttPort: 0, httpPort: 0, tokenKey: { version: 1, key: randomBytes(32) }, log, ...dbOption(soft) }),
      ErrorCode.TokenKeyVersionRetired,
    );
  }, 240_000);
});
