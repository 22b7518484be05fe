import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgDb } from '../../sync-server/db/pg.js';
import { pgLeadership, type Leadership } from '../../sync-server/start/leader.js';
import { logSink } from '../support/log.js';
import { requirePostgres, startPostgres, type PgServer } from '../support/rig/postgres.js';
import { stopChild } from '../support/rig/procs.js';
import { PROJECT_ROOT } from '../support/rig/vcards.js';
import { waitFor } from '../support/wait.js';

/**
 * The leadership of several sync-server instances (issue 16 item 2, start/leader.ts) on a real PostgreSQL 15: one
 * holder of the advisory lock at a time; kill -9 of the holder's process → another leads within 10 s; the holder's
 * lock connection cut or frozen → it steps down, and before a follower can lead.
 */
const run = requirePostgres('leader-pg.test.ts');

/** The wall-clock time at which the leadership emits `event`. */
function when(l: Leadership, event: 'gained' | 'lost'): Promise<number> {
  return new Promise((res) => l.on(event, () => res(Date.now())));
}

describe.skipIf(!run)('leadership on PostgreSQL (advisory lock)', () => {
  let pg: PgServer;
  const open: Leadership[] = [];
  const children: ChildProcess[] = [];
  const lead = async (url: string, o: { tryMs?: number; checkMs?: number; answerMs?: number } = {}) => {
    const l = await pgLeadership(url, { ...o, log: logSink().log });
    open.push(l);
    return l;
  };
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    for (const l of open) await l.close();
    for (const c of children) await stopChild(c, 'SIGKILL');
    await pg?.stop();
  });

  it('one instance leads, the other follows; when the leader closes, the follower leads within one try', async () => {
    const url = pg.createDatabase('lead');
    const a = await lead(url);
    const b = await lead(url);
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    const gained = when(b, 'gained');
    const t0 = Date.now();
    await a.close();
    const t1 = await gained;
    expect(b.isLeader()).toBe(true);
    expect(a.isLeader()).toBe(false);
    expect(t1 - t0).toBeLessThan(2000 + 1500); // one tryMs (and the try's own round trip)
  });

  it('kill -9 of the leading process: another instance leads within 10 s', async () => {
    const url = pg.createDatabase('kill');
    const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'test', 'support', 'leader-child.ts'), url], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => out.includes('gained'), { timeoutMs: 30_000, what: () => `the child to lead: ${out}` });
    const b = await lead(url);
    expect(b.isLeader()).toBe(false);
    const gained = when(b, 'gained');
    const t0 = Date.now();
    child.kill('SIGKILL');
    const t1 = await gained;
    console.log(`leader-pg: kill -9 → another instance leads after ${t1 - t0} ms`);
    expect(t1 - t0).toBeLessThan(10_000);
    expect(b.isLeader()).toBe(true);
  }, 40_000);

  it('the leader whose lock connection is cut steps down at once, then a follower leads', async () => {
    const url = pg.createDatabase('cut');
    const a = await lead(url);
    const b = await lead(url);
    expect(a.isLeader()).toBe(true);
    const lost = when(a, 'lost');
    const gained = when(b, 'gained');
    const admin = new PgDb({ url });
    const t0 = Date.now();
    try {
      // the leader's backend: it holds our advisory lock
      const pid = admin
        .prepare(
          "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .pluck()
        .get() as number;
      expect(admin.prepare('SELECT pg_terminate_backend(?)').pluck().get(pid)).toBe(1);
    } finally {
      admin.close();
    }
    const tLost = await lost;
    expect(a.isLeader()).toBe(false);
    expect(tLost - t0).toBeLessThanOrEqual(2000 + 1500 + 500); // its next check fails: checkMs + answerMs
    await gained;
    expect(b.isLeader()).toBe(true);
    expect(a.isLeader()).toBe(false); // lost is final
  }, 20_000);

  it('a leader whose event loop stalls longer than its lease does not count as leader until a check is answered again', async () => {
    const url = pg.createDatabase('stall');
    const a = await lead(url);
    let lost = false;
    a.on('lost', () => (lost = true));
    expect(a.isLeader()).toBe(true);
    // due with the leader's check (same delay, set after it): the check's SELECT 1 leaves, then the loop stalls
    // past checkMs + answerMs, no timer, no I/O (a big synchronous import step, a swapped-out host)
    await new Promise<void>((r) =>
      setTimeout(() => {
        const until = Date.now() + 2000 + 1500 + 300;
        while (Date.now() < until) {
          // stalled
        }
        r();
      }, 2000),
    );
    expect(a.isLeader()).toBe(false); // a job firing right now skips its turn
    await waitFor(() => a.isLeader(), { timeoutMs: 5000, what: 'the next check to be answered' });
    expect(lost).toBe(false); // the answer that came during the stall counts: no step-down for a busy loop
  }, 15_000);

  it('a request that finds the lease stale asks PostgreSQL again: a busy leader still serves its own imports', async () => {
    const url = pg.createDatabase('confirm');
    const a = await lead(url);
    const b = await lead(url);
    const until = Date.now() + 2000 + 1500 + 300; // past the lease (checkMs + answerMs), no timer, no I/O
    while (Date.now() < until) {
      // stalled
    }
    expect(a.isLeader()).toBe(false); // what a job firing now sees
    const asked = a.confirm(); // what an import request does (start/services.ts leaderOnly)
    expect(await asked).toBe(true);
    expect(a.isLeader()).toBe(true); // renewed by that answer
    expect(await b.confirm()).toBe(false); // a follower is not made leader by asking
  }, 15_000);

  it('a leader whose lock connection hangs (a partition) steps down while PostgreSQL still holds its lock: never two leaders', async () => {
    const url = new URL(pg.createDatabase('hang'));
    // the leader reaches PostgreSQL through a proxy that can freeze: nothing passes, and no socket closes
    const proxy = await freezableProxy(Number(url.port));
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    const a = await lead(viaProxy.toString());
    const b = await lead(url.toString(), { tryMs: 300 });
    expect(a.isLeader()).toBe(true);
    const events: string[] = [];
    a.on('lost', () => events.push('a lost'));
    b.on('gained', () => events.push('b gained'));
    const lost = when(a, 'lost');
    const t0 = Date.now();
    proxy.freeze();
    const tLost = await lost;
    expect(tLost - t0).toBeLessThanOrEqual(2000 + 1500 + 500);
    expect(a.isLeader()).toBe(false);
    // PostgreSQL's side of the connection is alive (the proxy holds it): the lock is still taken, b cannot lead yet
    await new Promise((r) => setTimeout(r, 1000));
    expect(b.isLeader()).toBe(false);
    // the partition heals by closing: PostgreSQL frees the lock, b leads
    const gained = when(b, 'gained');
    proxy.close();
    await gained;
    expect(events).toEqual(['a lost', 'b gained']);
  }, 20_000);
});

/** A TCP proxy to 127.0.0.1:port whose freeze() stops forwarding both ways without closing anything. */
async function freezableProxy(port: number): Promise<{ port: number; freeze(): void; close(): void }> {
  const sockets: Socket[] = [];
  let frozen = false;
  const server: Server = createServer((inbound) => {
    const outbound = connect(port, '127.0.0.1');
    sockets.push(inbound, outbound);
    inbound.on('data', (d) => frozen || outbound.write(d));
    outbound.on('data', (d) => frozen || inbound.write(d));
    inbound.on('error', () => undefined);
    outbound.on('error', () => undefined);
    // frozen, a close does not pass either: PostgreSQL never hears that the leader went
    inbound.on('close', () => frozen || outbound.destroy());
    outbound.on('close', () => frozen || inbound.destroy());
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const a = server.address();
  if (!a || typeof a !== 'object') throw new Error('no proxy port');
  return {
    port: a.port,
    freeze: () => {
      frozen = true;
    },
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}
