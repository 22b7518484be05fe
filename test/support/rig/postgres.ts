/**
 * A private PostgreSQL 15 for one test file, from Debian's packages (apt-get install postgresql): `initdb` and
 * `postgres` in a temp dir, listening on a free loopback port and on a unix socket in that dir, fsync on (the
 * durability of acknowledged writes is tested; `{ fsync: false }` for a check that only parses statements).
 * The one way the tests start a PostgreSQL (sql-portable's scratch server is this one too, test/support/pg-parse.ts).
 * As root it runs as the `postgres` OS user (PostgreSQL refuses root).
 * Each test file gets fresh databases from `createDatabase()`; `stop()` in `afterAll` ends the server by its pid and
 * removes the dir, also when a test failed half way.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgDb } from '../../../sync-server/db/pg.js';
import { stopChild } from './procs.js';
import { freePort } from './broker.js';

export const PG_BIN = process.env.RC_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** Is PostgreSQL 15 installed? (tests skip outside CI when it is not; in CI its absence fails them) */
export function postgresAvailable(): boolean {
  return existsSync(join(PG_BIN, 'initdb')) && existsSync(join(PG_BIN, 'postgres'));
}

/** The house rule: skip with a message outside CI, fail in CI. Returns whether to run. */
export function requirePostgres(what: string): boolean {
  const have = postgresAvailable();
  if (!have && process.env.CI) throw new Error(`PostgreSQL is not installed: CI must run ${what} (apt-get install postgresql libpq-dev)`);
  if (!have) console.warn(`${what}: the PostgreSQL half is skipped, PostgreSQL 15 is not installed (apt-get install postgresql)`);
  return have;
}

export interface PgServer {
  port: number;
  dir: string;
  /** A new empty database; returns its postgres:// URL. */
  createDatabase(prefix?: string): string;
  /** The server's `postgres` database, for `createDatabaseAt` from another process (the test project's global setup). */
  adminUrl: string;
  stop(): Promise<void>;
}

/** As root: the postgres user's uid and gid, and the command prefix that runs as them. */
function asPostgres(): { uid: number; gid: number; prefix: string[] } | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  if (!Number.isInteger(uid) || uid <= 0) throw new Error('running as root, and there is no postgres user to run PostgreSQL as');
  return { uid, gid: id('-g'), prefix: ['runuser', '-u', 'postgres', '--'] };
}

function command(prefix: string[], bin: string, args: string[]): [string, string[]] {
  const full = [...prefix, join(PG_BIN, bin), ...args];
  return [full[0]!, full.slice(1)];
}

/**
 * A new empty database on the server `adminUrl` names; returns its URL. Its text compares and sorts by bytes
 * (LC_COLLATE 'C', from template0), as on SQLite: keyset pages (`token > ?`) and the JS merges of sorted lists rely
 * on it (docs/postgres.md).
 */
export function createDatabaseAt(adminUrl: string, prefixName = 'rc'): string {
  const name = `${prefixName}_${randomBytes(6).toString('hex')}`;
  const db = new PgDb({ url: adminUrl });
  try {
    db.exec(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'`);
  } finally {
    db.close();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function startPostgres(o: { fsync?: boolean } = {}): Promise<PgServer> {
  const dir = mkdtempSync(join(tmpdir(), 'rc-pg-'));
  const data = join(dir, 'data');
  const user = asPostgres();
  if (user) chownSync(dir, user.uid, user.gid);
  const prefix = user?.prefix ?? [];
  const init = spawnSync(
    ...command(prefix, 'initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-instructions', '--no-sync']),
    { encoding: 'utf8' },
  );
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr}`);
  }
  const port = await freePort();
  const pgArgs = [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `fsync=${o.fsync === false ? 'off' : 'on'}`,
    '-c',
    'shared_buffers=32MB',
  ];
  pgArgs.push('-c', 'max_connections=40', '-c', 'log_min_messages=warning');
  const child: ChildProcess = spawn(...command(prefix, 'postgres', pgArgs), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const admin = `postgres://postgres@127.0.0.1:${port}/postgres`;

  const stop = async () => {
    // the postmaster's own pid (under runuser the child is runuser): SIGINT is PostgreSQL's fast shutdown
    const pidFile = join(data, 'postmaster.pid');
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : NaN;
    if (Number.isInteger(pid) && pid > 0) {
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // already gone
      }
    }
    await stopChild(child, 'SIGINT', 15_000);
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = spawnSync(join(PG_BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-q']);
    if (ready.status === 0) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`PostgreSQL did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    port,
    dir,
    createDatabase(prefixName = 'rc') {
      return createDatabaseAt(admin, prefixName);
    },
    adminUrl: admin,
    stop,
  };
}
