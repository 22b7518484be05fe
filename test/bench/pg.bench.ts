// npm run bench:pg [-- --url postgres://user@host/db] [--queries 5000] [--inserts 20000] [--rows 100000] [--batch 100]
//
// The cost of the registry's synchronous PostgreSQL access (sync-server/db/pg.ts, docs/postgres.md), the same
// statements through the same Db interface on PostgreSQL and, for scale, on SQLite (WAL, synchronous=FULL as the
// server runs it):
//  - query: one prepared SELECT by primary key (a journal-shaped table), µs each (mean, p50, p99): one round trip;
//  - insert in a transaction: one prepared INSERT per row, one COMMIT for all, µs per row;
//  - insert autocommit: one INSERT per COMMIT (each a durable commit: fsync), µs per row;
//  - batched: multi-row INSERT … VALUES (…),(…) of --batch rows per statement, 50 statements per transaction, rows/s.
// Without --url it starts a private PostgreSQL 15 (test/support/rig/postgres.ts, fsync on). Last line: one JSON object.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgDb } from '../../sync-server/db/pg.js';
import type { Db } from '../../sync-server/db/types.js';
import { startPostgres, type PgServer } from '../support/rig/postgres.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const urlArg = process.argv.indexOf('--url');
const QUERIES = arg('queries', 5000);
const INSERTS = arg('inserts', 20_000);
const AUTOCOMMIT = arg('autocommit', 1000);
const ROWS = arg('rows', 100_000);
const BATCH = arg('batch', 100);

interface Figures {
  queryUsMean: number;
  queryUsP50: number;
  queryUsP99: number;
  insertTxUs: number;
  insertAutocommitUs: number;
  batchedRowsPerS: number;
}

const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

function run(db: Db, ddl: string): Figures {
  db.exec(ddl);
  const payload = Buffer.alloc(64, 7);
  const row = (i: number) => [`bus-${i % 100}`, i, 1_764_576_000_000 + i, `tok-${i % 5000}`, 3500, payload];

  // insert, one transaction for all rows
  const ins = db.prepare('INSERT INTO bench(device, seq, eff_ms, token, fare, payload) VALUES (?, ?, ?, ?, ?, ?)');
  let t = performance.now();
  db.transaction(() => {
    for (let i = 0; i < INSERTS; i++) ins.run(...row(i));
  })();
  const insertTxUs = ((performance.now() - t) * 1000) / INSERTS;

  // insert, one durable commit each
  t = performance.now();
  for (let i = INSERTS; i < INSERTS + AUTOCOMMIT; i++) ins.run(...row(i));
  const insertAutocommitUs = ((performance.now() - t) * 1000) / AUTOCOMMIT;

  // point queries by primary key
  const get = db.prepare('SELECT eff_ms, token, fare FROM bench WHERE device = ? AND seq = ?');
  const times: number[] = [];
  for (let q = 0; q < QUERIES; q++) {
    const i = (q * 7919) % INSERTS;
    const t0 = performance.now();
    const r = get.get(`bus-${i % 100}`, i) as { fare: number } | undefined;
    times.push((performance.now() - t0) * 1000);
    if (r?.fare !== 3500) throw new Error(`row ${i} not found`);
  }
  times.sort((a, b) => a - b);

  // batched multi-row inserts
  const multi = db.prepare(
    `INSERT INTO bench(device, seq, eff_ms, token, fare, payload) VALUES ${Array.from({ length: BATCH }, () => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
  );
  const base = INSERTS + AUTOCOMMIT;
  const statements = Math.ceil(ROWS / BATCH);
  t = performance.now();
  for (let s = 0; s < statements; s += 50) {
    db.transaction(() => {
      for (let k = s; k < Math.min(s + 50, statements); k++) multi.run(Array.from({ length: BATCH }, (_, j) => row(base + k * BATCH + j)).flat());
    })();
  }
  const batchedRowsPerS = (statements * BATCH) / ((performance.now() - t) / 1000);
  return {
    queryUsMean: round(times.reduce((a, b) => a + b, 0) / times.length),
    queryUsP50: round(pct(times, 50)),
    queryUsP99: round(pct(times, 99)),
    insertTxUs: round(insertTxUs),
    insertAutocommitUs: round(insertAutocommitUs),
    batchedRowsPerS: Math.round(batchedRowsPerS),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'rc-bench-pg-'));
let server: PgServer | null = null;
try {
  if (urlArg < 0) server = await startPostgres();
  const url = urlArg > 0 ? process.argv[urlArg + 1]! : server!.createDatabase('rc_bench');
  const pg = new PgDb({ url });
  const postgres = run(pg, 'CREATE TABLE bench(device text, seq bigint, eff_ms bigint, token text, fare bigint, payload bytea, PRIMARY KEY(device, seq))');
  pg.close();
  const lite = new Database(join(dir, 'bench.sqlite'));
  lite.pragma('journal_mode = WAL');
  lite.pragma('synchronous = FULL');
  const sqlite = run(
    lite,
    'CREATE TABLE bench(device TEXT, seq INTEGER, eff_ms INTEGER, token TEXT, fare INTEGER, payload BLOB, PRIMARY KEY(device, seq)) WITHOUT ROWID',
  );
  lite.close();
  for (const [name, f] of [
    ['PostgreSQL', postgres],
    ['SQLite', sqlite],
  ] as const)
    console.log(
      `${name.padEnd(10)} query ${f.queryUsMean} µs (p50 ${f.queryUsP50}, p99 ${f.queryUsP99}); insert in a transaction ${f.insertTxUs} µs/row; ` +
        `autocommit ${f.insertAutocommitUs} µs/row; batched ${BATCH}/statement ${f.batchedRowsPerS} rows/s`,
    );
  console.log(JSON.stringify({ bench: 'pg', queries: QUERIES, inserts: INSERTS, rows: ROWS, batch: BATCH, postgres, sqlite }));
} finally {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
}
