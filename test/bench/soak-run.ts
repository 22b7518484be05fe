/**
 * The soak (issue 13): N `rc-device run` buses (each enrolled with `rc-provision init`, its own dir
 * and store) on one `rc-sync-server start` process and Mosquitto, tapping virtual cards through real
 * pcscd + vpcd continuously, while a chaos loop kill -9s devices, the server and the broker (and
 * restarts them) and cuts device↔broker links (a FaultProxy per device: black hole or reset), and the
 * operator publishes new stop-list versions. Then everything is healed and reconciled:
 *  - every tap any device committed (its journal SQLite) is on the server exactly once (same seq, token, time);
 *  - no device's list is a mix of two versions (one active generation per scope, the server's version, the server's tokens);
 *  - PRAGMA integrity_check is ok on every store and, on SQLite, on the registry.
 * The server's registry is SQLite in its data dir, or with RC_TEST_DB=postgres (the vitest run only) PostgreSQL.
 * Used by test/bench/soak.bench.ts (minutes) and test/e2e/soak.e2e.test.ts (a short run).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dialectOf } from '../../sync-server/db/sql.js';
import type { Db } from '../../sync-server/registry.js';
import { BusProc, Mosquitto, Readers, ServerProc, closeAll } from '../e2e/fleet-rig.js';
import { cardsCsv } from '../support/registry-csv.js';
import { syntheticPan, syntheticPsn } from '../support/pans.js';
import { waitFor } from '../support/wait.js';

export interface SoakOptions {
  devices: number;
  /** Chaos phase length. */
  seconds: number;
  /** One chaos action every this many ms (default 3000). */
  chaosEveryMs?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Keep the directories (default false). */
  keep?: boolean;
}

export interface SoakResult {
  devices: number;
  seconds: number;
  setupSec: number;
  healSec: number;
  taps: number;
  onServer: number;
  kills: { device: number; server: number; broker: number };
  cuts: { blackhole: number; reset: number };
  listVersions: number;
  /** Stop-list imports that failed (the server was down): not an error. */
  importsRefused: number;
  /** Restarts that did not come up in time (retried at the heal): a figure of the machine's load, not an error. */
  slowRestarts: number;
  lost: number;
  duplicated: number;
  /** Server entries no device journal holds (should be 0). */
  phantom: number;
  mixedLists: number;
  /**
   * 'ok', or what failed: PRAGMA integrity_check of every device store and, when the registry is SQLite, of the
   * registry. A PostgreSQL registry is not checked (PostgreSQL has no integrity_check; its consistency after a kill -9
   * of the server is PostgreSQL's own crash recovery, and the reconciliation below reads every row the soak wrote).
   */
  integrity: string;
  load: number[];
  problems: string[];
}

const CARDS = 40;
const RULES = {
  schema: 1,
  tariff: {
    version: 1,
    routes: { '1': { fullFareKopecks: 3500 }, '2': { fullFareKopecks: 3500 }, '3': { fullFareKopecks: 3500 } },
    benefits: { pensioner: { kind: 'percent', percentOff: 50, quota: { trips: 40, per: 'month', onExhausted: 'full-fare' } } },
    repeatWindowSec: 2,
    transfer: { windowSec: 600, fareKopecks: 0, maxTransfers: 1 },
    dailyCapKopecks: 10_000,
  },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

async function pool<T>(items: readonly T[], width: number, f: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await f(items[i]!, i);
      }
    }),
  );
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? (() => undefined);
  const t0 = Date.now();
  const base = mkdtempSync(join(tmpdir(), 'rc-soak-'));
  const env: NodeJS.ProcessEnv = { ...process.env, RC_LOG_LEVEL: 'warn' };
  delete env.RC_TOKEN_KEY;
  const buses: BusProc[] = [];
  let readers: Readers | null = null;
  let mosq: Mosquitto | null = null;
  let server: ServerProc | null = null;
  const res: SoakResult = {
    devices: o.devices,
    seconds: o.seconds,
    setupSec: 0,
    healSec: 0,
    taps: 0,
    onServer: 0,
    kills: { device: 0, server: 0, broker: 0 },
    cuts: { blackhole: 0, reset: 0 },
    listVersions: 0,
    importsRefused: 0,
    slowRestarts: 0,
    lost: 0,
    duplicated: 0,
    phantom: 0,
    mixedLists: 0,
    integrity: 'not checked',
    load: [],
    problems: [],
  };
  try {
    readers = await Readers.start(o.devices);
    mosq = await Mosquitto.start(join(base, 'mosquitto'));
    server = await ServerProc.start(join(base, 'server'), mosq, env);
    const s = server;
    await s.setRules(RULES);
    await s.importCsv('cards', cardsCsv(0, CARDS));
    await s.importCsv('stoplist', 'pan,psn,reason\n');
    log(`server and Mosquitto up; enrolling ${o.devices} buses`);
    const ids = Array.from({ length: o.devices }, (_, i) => i);
    const provisioned: BusProc[] = new Array<BusProc>(o.devices);
    await pool(ids, 4, async (i) => {
      provisioned[i] = await BusProc.provision(s, readers!, i, join(base, `bus-${i}`), { route: String((i % 3) + 1) }, env);
    });
    buses.push(...provisioned);
    await pool(buses, 4, (b) => b.up());
    res.setupSec = Math.round((Date.now() - t0) / 1000);
    log(`${o.devices} buses running after ${res.setupSec} s; chaos for ${o.seconds} s`);

    // ---- chaos ------------------------------------------------------------------------
    let stop = false;
    const pending = new Set<Promise<unknown>>();
    const later = (p: Promise<unknown>) => {
      const q = p.catch((e: unknown) => res.problems.push(String(e).slice(0, 300))).finally(() => pending.delete(q));
      pending.add(q);
    };
    // every bus taps continuously: a card in the field until the bus reports the tap (or 4 s), then away, 0.3–1.5 s pause
    const tapping = buses.map(async (b, i) => {
      await sleep(i * 150);
      while (!stop) {
        const c = Math.floor(Math.random() * CARDS);
        try {
          await readers!.host.insert(b.slot.port, { kind: 'emv', pan: syntheticPan(c), expiry: '2030-12', psn: syntheticPsn(c) });
          const before = await b.status().then(
            (x) => x.taps,
            () => null,
          );
          if (before !== null)
            await waitFor(async () => (await b.status()).taps > before, { timeoutMs: 4000, what: 'tap', everyMs: 250 }).catch(() => undefined);
          else await sleep(1000);
          await readers!.host.remove(b.slot.port);
        } catch {
          await sleep(500);
        }
        await sleep(300 + Math.random() * 1200);
      }
    });
    const every = o.chaosEveryMs ?? 3000;
    const end = Date.now() + o.seconds * 1000;
    let serverBusy = false;
    let brokerBusy = false;
    let n = 0;
    while (Date.now() < end) {
      await sleep(every * (0.5 + Math.random()));
      n++;
      res.load.push(Math.round((await import('node:os')).loadavg()[0]! * 10) / 10);
      // the first actions go round every kind of fault once (a short run sees each), then at random
      const ROTATION = [0.1, 0.5, 0.8, 0.6, 0.95, -1];
      const r = n <= ROTATION.length ? ROTATION[n - 1]! : Math.random();
      if (r < 0 || (n > ROTATION.length && n % 4 === 0)) {
        // the operator publishes a new stop-list version (some cards that are tapped get refused)
        const stopped = Array.from({ length: 3 }, () => Math.floor(Math.random() * CARDS));
        later(
          s
            .importCsv('stoplist', ['pan,expiry,reason', ...[...new Set(stopped)].map((c) => `${syntheticPan(c)},2030-12,lost`)].join('\n') + '\n')
            .then(() => res.listVersions++)
            .catch(() => res.importsRefused++), // the server may be down right now: that is part of the soak
        );
      } else if (r < 0.4) {
        const b = pick(buses.filter((x) => x.running));
        if (!b) continue;
        await b.kill9();
        res.kills.device++;
        log(`kill -9 ${b.id}`);
        later(
          sleep(500 + Math.random() * 2000)
            .then(() => b.up(false))
            .catch(() => res.slowRestarts++),
        );
      } else if (r < 0.75) {
        const b = pick(buses.filter((x) => x.proxy.state === 'pass'));
        if (!b) continue;
        const mode = n <= ROTATION.length ? (r < 0.55 ? 'reset' : 'blackhole') : Math.random() < 0.5 ? 'blackhole' : 'reset';
        b.proxy.cut(mode);
        res.cuts[mode]++;
        log(`cut ${b.id} (${mode})`);
        later(sleep(1000 + Math.random() * 7000).then(() => b.proxy.restore()));
      } else if (r < 0.88) {
        if (serverBusy) continue;
        serverBusy = true;
        await s.kill9();
        res.kills.server++;
        log('kill -9 rc-sync-server');
        later(
          sleep(500 + Math.random() * 2000)
            .then(() => s.up())
            .catch(() => res.slowRestarts++)
            .finally(() => (serverBusy = false)),
        );
      } else {
        if (brokerBusy) continue;
        brokerBusy = true;
        await mosq.kill9();
        res.kills.broker++;
        log('kill -9 mosquitto');
        later(
          sleep(500 + Math.random() * 2000)
            .then(() => mosq!.up())
            .finally(() => (brokerBusy = false)),
        );
      }
    }
    stop = true;
    await Promise.all(tapping);
    while (pending.size) await Promise.all([...pending]);

    // ---- heal ---------------------------------------------------------------------------
    const t1 = Date.now();
    for (const b of buses) b.proxy.restore();
    for (let i = 0; !s.running; i++) await s.up(0, 300_000).catch((e: unknown) => (i >= 2 ? Promise.reject(e) : undefined));
    for (const b of buses) for (let i = 0; !b.running; i++) await b.up(false, 300_000).catch((e: unknown) => (i >= 2 ? Promise.reject(e) : undefined));
    // one connection for the polls below (on PostgreSQL a connection per poll would be a connect and a migration check each)
    const live = s.db();
    try {
      const versions = live.prepare("SELECT scope, version FROM scopes WHERE scope IN ('transit', 'stoplist')");
      const serverLists = () => new Map((versions.all() as { scope: string; version: number }[]).map((x) => [x.scope, x.version]));
      log('healed; waiting for every journal upload and list version');
      for (const b of buses) {
        await b.waitStatus(
          (x) => {
            const want = serverLists();
            return (
              x.sync.connected &&
              x.journal.backlog === 0 &&
              x.journal.ackedSeq === x.journal.lastSeq &&
              [...want].every(([scope, v]) => x.lists.find((l) => l.scope === scope)?.version === v)
            );
          },
          'caught up (journal acknowledged, lists at the server versions)',
          180_000,
        );
      }
    } finally {
      live.close();
    }
    res.healSec = Math.round((Date.now() - t1) / 1000);
    for (const b of buses) await b.stop();
    await s.stop();

    // ---- reconcile -----------------------------------------------------------------------
    const reg = s.db();
    const integrity: string[] = [];
    const check = (name: string, db: Db) => {
      const r = db.pragma('integrity_check', { simple: true }) as string;
      if (r !== 'ok') integrity.push(`${name}: ${r}`);
    };
    try {
      // the registry on PostgreSQL: no PRAGMA integrity_check there (see SoakResult.integrity); the stores are SQLite always
      if (dialectOf(reg) === 'sqlite') check('registry', reg);
      const onServer = reg.prepare('SELECT seq, token, time FROM journal WHERE device = ?');
      const srvTokens = reg.prepare('SELECT token FROM entries WHERE scope = ?').pluck();
      const srvVersion = reg.prepare('SELECT version FROM scopes WHERE scope = ?').pluck();
      const devIds = new Set(buses.map((b) => b.id));
      res.phantom += (reg.prepare('SELECT device FROM journal').pluck().all() as string[]).filter((d) => !devIds.has(d)).length;
      for (const b of buses) {
        const db = b.db();
        try {
          check(b.id, db);
          const mine = db.prepare('SELECT seq, token, time_ms FROM journal ORDER BY seq').all() as { seq: number; token: Buffer; time_ms: number }[];
          const theirs = new Map<number, { token: string | null; time: string }>();
          const seen = new Map<string, number>();
          for (const r of onServer.all(b.id) as { seq: number; token: string | null; time: string }[]) {
            theirs.set(r.seq, r);
            const k = `${r.token}|${r.time}`;
            seen.set(k, (seen.get(k) ?? 0) + 1);
          }
          res.taps += mine.length;
          res.onServer += theirs.size;
          for (const r of mine) {
            const t = theirs.get(r.seq);
            const token = r.token.length ? r.token.toString('hex') : null;
            if (!t || t.token !== token || Date.parse(t.time) !== r.time_ms) res.lost++;
          }
          for (const c of seen.values()) if (c > 1) res.duplicated += c - 1;
          const devSeqs = new Set(mine.map((r) => r.seq));
          for (const seq of theirs.keys()) if (!devSeqs.has(seq)) res.phantom++;
          // lists: one active generation per scope, at the server's version, with exactly the server's tokens
          for (const scope of ['transit', 'stoplist']) {
            const sc = db.prepare('SELECT version, gen FROM scopes WHERE scope = ?').get(scope) as { version: number; gen: number } | undefined;
            const active = db.prepare("SELECT gen, version FROM gens WHERE scope = ? AND state = 'active'").all(scope) as { gen: number; version: number }[];
            const want = srvVersion.get(scope) as number | undefined;
            // (a generation's own version is the snapshot it started from: deltas apply in place and move the scope's version)
            let ok = want === undefined ? !sc && active.length === 0 : !!sc && active.length === 1 && active[0]!.gen === sc.gen && sc.version === want;
            if (ok && sc) {
              const have = new Set((db.prepare(`SELECT token FROM list_${sc!.gen}`).pluck().all() as Buffer[]).map((t) => t.toString('hex')));
              const srv = srvTokens.all(scope) as string[];
              ok = have.size === srv.length && srv.every((t) => have.has(t));
            }
            if (!ok) {
              res.mixedLists++;
              res.problems.push(`${b.id} ${scope}: device ${JSON.stringify({ sc, active })}, server v${want}`);
            }
          }
        } finally {
          db.close();
        }
      }
    } finally {
      reg.close();
    }
    res.integrity = integrity.length ? integrity.join('; ') : 'ok';
    res.kills.device = buses.reduce((a, b) => a + b.kills, 0);
    res.kills.server = s.kills;
    res.kills.broker = mosq.kills;
    return res;
  } finally {
    await closeAll(buses, server, mosq, readers, []);
    if (!o.keep) rmSync(base, { recursive: true, force: true });
    else log(`kept ${base}`);
  }
}
