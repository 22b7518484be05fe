/**
 * The offline commands take `--database` as `start` does (sync-server/commands/database.ts): on a registry in
 * PostgreSQL, what `user add`, `bank add`, `identities import` and `key retire` write is what a server started on
 * that database sees, and nothing is written to a SQLite file in --data. A bad value is db.bad-spec before anything
 * is opened. Real PostgreSQL 15 (test/support/rig/postgres.ts) and the CLI from source.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { PgDb } from '../../sync-server/db/pg.js';
import { Procs, type Run } from '../support/rig/procs.js';
import { requirePostgres, startPostgres, type PgServer } from '../support/rig/postgres.js';

const havePg = requirePostgres('the offline commands on PostgreSQL');

describe.skipIf(!havePg)('offline commands with --database postgres://…', () => {
  // a key of version 3: `key retire` must find that version recorded by the server, in PostgreSQL
  const env: NodeJS.ProcessEnv = { ...process.env, RC_LOG_LEVEL: 'warn', RC_TOKEN_KEY: '00112233445566778899aabbccddeeff', RC_TOKEN_KEY_VERSION: '3' };
  delete env.RC_API_TOKEN;
  delete env.RC_API_TOKEN_FILE;
  const procs = new Procs(env);
  let pg: PgServer;
  let url = '';
  let db: PgDb;
  let work = '';
  let data = '';
  let httpUrl = '';
  const cli = (args: string[]): Promise<Run> => procs.run('sync-server', [...args, '--data', data, '--database', url, '--json']);
  const errorOf = (r: Run) => (JSON.parse(r.stdout) as { error: { code: string } }).error;

  beforeAll(async () => {
    pg = await startPostgres();
    url = pg.createDatabase('rc_offline');
    work = mkdtempSync(join(tmpdir(), 'rc-offline-pg-'));
    data = join(work, 'data');
    // the server on that database, as an operator runs it beside the offline commands
    ({ httpUrl } = await procs.startServer(['start', '--mqtt-port', '0', '--http-port', '0', '--data', data, '--database', url], {
      timeoutMs: 60_000,
    }));
    db = new PgDb({ url });
  }, 120_000);
  afterAll(async () => {
    db?.close();
    await procs.stopAll();
    await pg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('accounts: a user added offline signs in through the server on the same database; the audit log has the addition', async () => {
    const add = await cli(['user', 'add', 'ana', '--role', 'operator']);
    expect(add.code, add.stderr).toBe(0);
    const { password } = JSON.parse(add.stdout) as { password: string };
    const login = await fetch(`${httpUrl}/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'ana', password }),
    });
    expect(login.status).toBe(200);
    const audit = await cli(['audit']);
    expect(audit.code, audit.stderr).toBe(0);
    const rows = (JSON.parse(audit.stdout) as { rows: { action: string; source: string; result: string }[] }).rows;
    expect(rows).toContainEqual(expect.objectContaining({ action: 'user.add', source: 'local', result: 'ok' }));
    expect(existsSync(join(data, 'registry.sqlite'))).toBe(false);
  }, 60_000);

  it('bank: a bank added offline is in the server’s public banks list', async () => {
    const add = await cli(['bank', 'add', 'bank-pg', '--name', 'Bank PG', '--out', join(work, 'for-bank')]);
    expect(add.code, add.stderr).toBe(0);
    const banks = (await (await fetch(`${httpUrl}/v1/public/banks`)).json()) as { banks: { id: string; name: string }[] };
    expect(banks.banks).toContainEqual(expect.objectContaining({ id: 'bank-pg', name: 'Bank PG' }));
    const list = await cli(['bank', 'list']);
    expect(JSON.parse(list.stdout)).toMatchObject({ banks: [expect.objectContaining({ id: 'bank-pg' })] });
  }, 60_000);

  it('identities: imported SNILS links land in PostgreSQL as keyed hashes only', async () => {
    const csv = join(work, 'snils.csv');
    writeFileSync(csv, 'person_id,snils\np-1,112-233-445 95\np-2,112-233-445 96\n');
    const r = await cli(['identities', 'import', csv]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ linked: 2 });
    const rows = db.prepare('SELECT person_id, snils_hash FROM person_snils ORDER BY person_id').all() as { person_id: string; snils_hash: string }[];
    expect(rows.map((x) => x.person_id)).toEqual(['p-1', 'p-2']);
    expect(JSON.stringify(rows)).not.toMatch(/11223344595|112-233-445/);
  }, 60_000);

  it('key retire: reads the key version the server started with from PostgreSQL and refuses to retire it', async () => {
    expect(db.prepare("SELECT value FROM meta WHERE key = 'token.key-version'").pluck().get()).toBe('3');
    const current = await cli(['key', 'retire', '--version', '3']);
    expect(current.code).toBe(1);
    expect(errorOf(current)).toMatchObject({ code: ErrorCode.TokenKeyVersionCurrent });
    expect(db.prepare('SELECT count(*) FROM token_key_retired').pluck().get()).toBe(0);
  }, 60_000);

  it('a bad --database is db.bad-spec for every family, and nothing is opened or made', async () => {
    const bad = (args: string[]) => procs.run('sync-server', [...args, '--data', join(work, 'never'), '--database', 'mysql://h/db', '--json']);
    const families = [
      ['user', 'list'],
      ['bank', 'list'],
      ['identities', 'import', join(work, 'snils.csv')],
      ['key', 'retire', '--version', '2'],
    ];
    const runs = await Promise.all(families.map(bad));
    for (const [i, r] of runs.entries()) {
      expect(r.code, families[i]!.join(' ')).toBe(1);
      expect(errorOf(r), families[i]!.join(' ')).toMatchObject({ code: ErrorCode.DbBadSpec });
    }
    expect(existsSync(join(work, 'never', 'registry.sqlite'))).toBe(false);
  }, 60_000);
});
