// CRASH TEST: a child taps in a loop against a real SQLite file and is killed
// with SIGKILL at ≥ 200 random moments, many of them during a snapshot apply of
// a 12-15k entry list. After each kill: integrity_check ok, journal seq without
// gaps, every tap the child reported committed is there, and each list is wholly
// one version (the last one reported applied, or the one being applied).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listSize, marker } from './crash-child.js';

const KILLS = Number(process.env.RC_CRASH_KILLS ?? 200);
const dir = mkdtempSync(join(tmpdir(), 'rc-crash-'));
const dbPath = join(dir, 'store.db');
const children = new Set<ChildProcessWithoutNullStreams>();
// The child is bundled once (esbuild, which tsx itself uses) so each restart is a
// plain `node child.mjs`: ~4x faster than `node --import tsx` and the same code.
let childCmd: string[] = ['--import', 'tsx', 'test/integration/crash-child.ts'];
beforeAll(async () => {
  try {
    const esbuild = await import('esbuild');
    const outfile = join('node_modules', '.cache', `rc-crash-${process.pid}`, 'crash-child.mjs');
    await esbuild.build({
      entryPoints: ['test/integration/crash-child.ts'],
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      minify: true,
      outfile,
      logLevel: 'silent',
    });
    childCmd = [outfile];
  } catch {
    // no esbuild: keep tsx
  }
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  rmSync(join('node_modules', '.cache', `rc-crash-${process.pid}`), { recursive: true, force: true });
});

interface Child {
  proc: ChildProcessWithoutNullStreams;
  lines: string[];
  wait(pred: (l: string) => boolean, ms: number): Promise<boolean>;
  exited: Promise<void>;
}

function spawnChild(seed: number): Child {
  // even seeds start with a snapshot apply: they are the ones killed mid-apply
  const proc = spawn(process.execPath, [...childCmd, dbPath, String(seed), seed % 2 === 0 ? 'snapshot-first' : 'random'], { stdio: 'pipe' });
  children.add(proc);
  const lines: string[] = [];
  let partial = '';
  const waiters: Array<() => void> = [];
  proc.stdout.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((res) => proc.on('exit', () => res()));
  void exited.then(() => {
    children.delete(proc);
    for (const w of waiters.splice(0)) w();
  });
  const wait = (pred: (l: string) => boolean, ms: number) =>
    new Promise<boolean>((resolve) => {
      const deadline = setTimeout(() => resolve(false), ms);
      const check = () => {
        if (lines.some(pred)) {
          clearTimeout(deadline);
          resolve(true);
        } else if (proc.exitCode !== null) {
          clearTimeout(deadline);
          resolve(false);
        } else waiters.push(check);
      };
      check();
    });
  Object.defineProperty(proc, 'stderrText', { get: () => stderr });
  return { proc, lines, wait, exited };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('crash safety (SIGKILL)', () => {
  it(`survives ${KILLS} SIGKILLs: integrity ok, no seq gap, no reported tap lost, lists whole`, async () => {
    const committed = new Map<number, string>(); // seq → token, as reported by children
    let appliedTransit = 0; // last version a child reported applied
    let appliedStop = 0;
    let killsDuringApply = 0;
    // a few children load ahead, so a restart after a kill costs only opening the store
    const ready: Child[] = [spawnChild(2), spawnChild(3)];
    const spent = { load: 0, open: 0, run: 0, verify: 0 };
    let mark = performance.now();
    const lap = (k: keyof typeof spent) => {
      const now = performance.now();
      spent[k] += now - mark;
      mark = now;
    };
    for (let k = 0; k < KILLS; k++) {
      const cur = ready.shift()!;
      mark = performance.now();
      expect(await cur.wait((l) => l === 'L', 30_000), 'child loaded').toBe(true);
      lap('load');
      cur.proc.stdin.write('go\n');
      expect(
        await cur.wait((l) => l.startsWith('R '), 30_000),
        `child ${k} opened the store: ${(cur.proc as unknown as { stderrText: string }).stderrText}`,
      ).toBe(true);
      lap('open');
      if (k + ready.length + 1 < KILLS) ready.push(spawnChild(k + 4)); // loads while this one runs (seed parity = k parity)
      if (k % 2 === 0) {
        // during a snapshot apply: right after it announced one, at a random point
        const saw = await cur.wait((l) => l.startsWith('S '), 3000);
        await sleep(Math.random() * 120);
        if (saw && !cur.lines.some((l) => l.startsWith('A '))) killsDuringApply++;
      } else await sleep(5 + Math.random() * 120);
      cur.proc.kill('SIGKILL');
      await cur.exited;
      lap('run');

      let announced = 0;
      for (const l of cur.lines) {
        const [t, a, b] = l.split(' ');
        if (t === 'C') committed.set(Number(a), b!);
        else if (t === 'A') appliedTransit = Math.max(appliedTransit, Number(a));
        else if (t === 'S') announced = Math.max(announced, Number(a));
        else if (t === 'D') appliedStop = Math.max(appliedStop, Number(a));
      }

      const db = new Database(dbPath);
      try {
        expect(db.pragma('integrity_check', { simple: true }), `integrity after kill ${k}`).toBe('ok');
        const j = db.prepare('SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM journal').get() as { n: number; lo: number; hi: number };
        const metaSeq = db.prepare(`SELECT value FROM meta WHERE key = 'journal_seq'`).pluck().get() as number;
        expect(j.hi ?? 0).toBeGreaterThanOrEqual(metaSeq);
        expect(j.n, `no gap after kill ${k}`).toBe(j.n === 0 ? 0 : j.hi - j.lo + 1);
        const maxReported = Math.max(0, ...committed.keys());
        expect(j.hi ?? 0, `reported seq ${maxReported} is durable`).toBeGreaterThanOrEqual(maxReported);
        const get = db.prepare('SELECT lower(hex(token)) FROM journal WHERE seq = ?').pluck();
        for (const l of cur.lines) {
          if (!l.startsWith('C ')) continue;
          const [, s, t] = l.split(' ');
          expect(get.get(Number(s)), `tap seq ${s}`).toBe(t);
        }
        // lists: wholly one version
        const tr = db.prepare(`SELECT version, gen FROM scopes WHERE scope = 'transit'`).get() as { version: number; gen: number } | undefined;
        const v = tr?.version ?? 0;
        expect(v === appliedTransit || v === announced, `transit version ${v} is the applied ${appliedTransit} or the announced ${announced}`).toBe(true);
        if (tr) {
          const count = db.prepare(`SELECT count(*) FROM list_${tr.gen}`).pluck().get() as number;
          const marked = db
            .prepare(`SELECT count(*) FROM list_${tr.gen} WHERE data LIKE ?`)
            .pluck()
            .get(`%:${marker(v).replaceAll('-', '')}`) as number;
          expect([count, marked], `transit v${v} whole`).toEqual([listSize(v), listSize(v)]);
        }
        const sl = db.prepare(`SELECT version, gen FROM scopes WHERE scope = 'stoplist'`).get() as { version: number; gen: number } | undefined;
        if (sl) {
          expect(sl.version).toBeGreaterThanOrEqual(appliedStop);
          expect(db.prepare(`SELECT count(*) FROM list_${sl.gen}`).pluck().get()).toBe(sl.version);
        }
        appliedTransit = v;
      } finally {
        db.close();
      }
      lap('verify');
    }
    for (const c of ready) c.proc.kill('SIGKILL');
    expect(committed.size).toBeGreaterThan(KILLS);
    expect(killsDuringApply).toBeGreaterThan(KILLS / 10);
    console.log(
      `crash test: ${KILLS} kills, ${killsDuringApply} during a snapshot apply, ${committed.size} committed taps verified; ms spent: ${JSON.stringify(Object.fromEntries(Object.entries(spent).map(([a, b]) => [a, Math.round(b)])))}`,
    );
  }, 1_200_000);
});
