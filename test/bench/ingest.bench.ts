/**
 * npm run bench:ingest [-- --database sqlite|postgres] [--instances 1|2] [--shared-ingest] [--devices 40]
 *                         [--entries 10000] [--batch 500] [--window 5000] [--url postgres://…] [--profile DIR]
 *
 * Journal ingest end to end (issue 16 figure: ≥ 50,000 entries/s into PostgreSQL with two server instances): many
 * simulated devices upload their journals over MQTT to a real Mosquitto, as device/sync/client.ts does it (batches of
 * --batch entries as JSON, one publish at a time at QoS 1, at most --window entries ahead of the ack), into N
 * `startServer` instances, each in a process of its own (the registry's access is synchronous: two instances in one
 * process would share one event loop). With --shared-ingest the instances share the uploads ($share on Mosquitto),
 * without it every instance stores every upload (the (device, seq) key keeps each once). Two instances need
 * PostgreSQL (one registry); without --url a private PostgreSQL 15 is started (test/support/rig/postgres.ts, fsync on).
 *
 * Prints: entries/s acknowledged (first upload to the last signed ack verified), the server-side store rate (the
 * instances' rc_taps_ingested_total, first stored to last), and the CPU each process used during the run (bench and
 * devices, every server instance, PostgreSQL's postmaster and backends, Mosquitto), with the load average beside it:
 * the machine may be shared, and the CPU split says what bounds the figure. Last line: one JSON object.
 *
 * Entries: a mix like a fleet's (80 % bus taps with route/vehicle, 15 % turnstile passages, 5 % canteen meals), each
 * with a card token, effective times around now, lists versions; a card taps a few times (never on two buses within
 * the impossible-trip window, so nothing is flagged).
 */
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { createLogger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { loadPublicKey } from '../../protocol/wire/envelope.js';
import { topics } from '../../protocol/wire/topics.js';
import { verifyJournalAck } from '../../protocol/wire/verify.js';
import { MAX_MQTT_PACKET } from '../../protocol/wire/mqtt-guard.js';
import { PgDb } from '../../sync-server/db/pg.js';
import { startServer } from '../../sync-server/server.js';
import { tokenOf } from '../support/registry-csv.js';
import { freePort, waitPort } from '../support/rig/broker.js';
import { startPostgres, type PgServer } from '../support/rig/postgres.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

// ---- a server instance: `--child '{…}'` (this file run again, in its own process) ----
if (args[0] === '--child') {
  const o = JSON.parse(args[1]!) as { dataDir: string; database?: string; brokerUrl: string; sharedIngest: boolean };
  const server = await startServer({
    dataDir: o.dataDir,
    ...(o.database ? { database: o.database } : {}),
    brokerUrl: o.brokerUrl,
    sharedIngest: o.sharedIngest,
    httpPort: 0,
    tokenKey: DEV_TOKEN_KEY,
    log: createLogger({ level: 'warn' }),
    // this measures the servers' ingest capacity: the per-device rate limit (100 entries/s after a burst) is lifted
    ingestLimits: { burst: Number.MAX_SAFE_INTEGER, perSecond: Number.MAX_SAFE_INTEGER },
  });
  const stored = async () => (await server.metrics.taps.get()).values.reduce((s, v) => s + v.value, 0);
  console.log(`ready ${server.leadership.isLeader() ? 'leader' : 'follower'}`);
  const t = setInterval(() => void stored().then((n) => console.log(`stored ${performance.now() + performance.timeOrigin} ${n}`)), 100);
  process.on('SIGTERM', () => {
    clearInterval(t);
    void server.close().then(() => process.exit(0));
  });
} else {
  await main();
}

/** utime + stime of a process, in ms (/proc/PID/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0; // gone
  }
}
/** The postmaster and its children (backends, writer, WAL writer, checkpointer). */
function postgresPids(pg: PgServer | null): number[] {
  if (!pg) return [];
  const pidFile = join(pg.dir, 'data', 'postmaster.pid');
  if (!existsSync(pidFile)) return [];
  const master = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  const kids = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const s = readFileSync(`/proc/${p}/stat`, 'utf8');
        return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === master;
      } catch {
        return false;
      }
    })
    .map(Number);
  return [master, ...kids];
}

async function main(): Promise<void> {
  const database = arg('database', 'sqlite');
  const instances = Number(arg('instances', '1'));
  const shared = args.includes('--shared-ingest');
  const DEVICES = Number(arg('devices', '40'));
  const PER = Number(arg('entries', '10000'));
  const BATCH = Number(arg('batch', '500'));
  const WINDOW = Number(arg('window', '5000'));
  const ACK_TIMEOUT_MS = 10_000; // device/sync/client.ts ackTimeoutMs
  if (database !== 'sqlite' && database !== 'postgres') throw new Error('--database sqlite|postgres');
  if (instances < 1 || instances > 2) throw new Error('--instances 1|2');
  if (instances > 1 && database === 'sqlite') throw new Error('two instances need one registry: --database postgres');
  if (shared && instances < 2) throw new Error('--shared-ingest needs --instances 2');

  const dir = mkdtempSync(join(tmpdir(), 'rc-bench-ingest-'));
  const children: ChildProcess[] = [];
  const clients: MqttClient[] = [];
  let mosq: ChildProcess | null = null;
  let pg: PgServer | null = null;
  try {
    // Mosquitto as the test rig runs it (test/support/rig/broker.ts), started here to know its pid (its CPU)
    const port = await freePort();
    writeFileSync(
      join(dir, 'mosquitto.conf'),
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\nmax_inflight_messages 100\nmax_packet_size ${MAX_MQTT_PACKET}\nset_tcp_nodelay true\n`,
    );
    mosq = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
    await waitPort(port);
    const brokerUrl = `mqtt://127.0.0.1:${port}`;

    let url: string | undefined;
    if (database === 'postgres') {
      url = args.includes('--url') ? arg('url', '') : undefined;
      if (!url) {
        pg = await startPostgres();
        url = pg.createDatabase('ingest');
      }
    }

    // the instances: the first makes the signing key, the others use it (docs/postgres.md "Deploying")
    const self = fileURLToPath(import.meta.url);
    // --profile DIR: each instance writes a V8 CPU profile there when it stops (node --cpu-prof), to see where its CPU goes
    const profile = args.includes('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${arg('profile', '')}`] : [];
    const leaders: string[] = [];
    let logLines = 0;
    const stored: number[][] = []; // per instance: [at ms, stored] samples
    for (let i = 0; i < instances; i++) {
      const dataDir = join(dir, `srv${i}`);
      mkdirSync(dataDir, { recursive: true });
      if (i > 0) copyFileSync(join(dir, 'srv0', 'signing-key.pem'), join(dataDir, 'signing-key.pem'));
      const c = spawn(
        process.execPath,
        [...profile, '--import', 'tsx', self, '--child', JSON.stringify({ dataDir, database: url, brokerUrl, sharedIngest: shared })],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      children.push(c);
      const samples: number[] = [];
      stored.push(samples);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`instance ${i} did not start`)), 120_000);
        c.once('exit', (code) => reject(new Error(`instance ${i} exited with ${code}`)));
        createInterface({ input: c.stdout! }).on('line', (l) => {
          const ready = /^ready (\w+)/.exec(l);
          if (ready) {
            leaders.push(ready[1]!);
            clearTimeout(t);
            resolve();
          }
          const s = /^stored ([\d.]+) (\d+)/.exec(l);
          if (s) samples.push(Number(s[1]), Number(s[2]));
          else if (!ready) {
            logLines++;
            if (logLines <= 20) console.error(`instance ${i}: ${l.slice(0, 400)}`); // the server's warnings and errors (pino writes to stdout)
          }
        });
      });
    }
    const key = loadPublicKey(readFileSync(join(dir, 'srv0', 'signing-key.pub.pem'), 'utf8'));

    // the devices' journals, made before the clock starts
    const now = Date.now();
    const kinds = (q: number) => (q % 20 < 16 ? 'bus' : q % 20 < 19 ? 'turnstile' : 'canteen');
    const devices = Array.from({ length: DEVICES }, (_, d) => {
      const id = `bench-ing-${d}`;
      const bodies: { upTo: number; body: Buffer }[] = [];
      for (let s0 = 1; s0 <= PER; s0 += BATCH) {
        const entries = [];
        for (let q = s0; q < Math.min(PER + 1, s0 + BATCH); q++) {
          const kind = kinds(q);
          // a card taps 4 times, an hour apart on its route (no impossible trip); times within the past day
          const card = d * PER + Math.floor(q / 4);
          const at = new Date(now - 86_400_000 + (q % 4) * 3_600_000 + (card % 3_000) * 1000).toISOString();
          const data: Record<string, unknown> = { effectiveTime: at, reader: 'r1' };
          if (kind === 'bus') Object.assign(data, { route: `r${card % 50}`, vehicle: `v${card % 50}` });
          if (kind === 'turnstile') data.direction = q % 2 ? 'entry' : 'exit';
          if (kind === 'canteen') data.meal = 'lunch';
          entries.push({
            seq: q,
            time: at,
            token: tokenOf(card, '2031-06'),
            kind,
            result: 'allow',
            reason: kind === 'bus' ? 'full-fare' : 'allowed',
            fareKopecks: kind === 'bus' ? 3500 : 0,
            benefit: null,
            lists: { transit: 3, stoplist: 7 },
            data,
          });
        }
        bodies.push({ upTo: Math.min(PER, s0 + BATCH - 1), body: Buffer.from(JSON.stringify({ device: id, entries })) });
      }
      return { id, bodies, acked: 0, sent: 0, ackAt: 0 };
    });
    const bytes = devices.reduce((s, d) => s + d.bodies.reduce((t, b) => t + b.body.length, 0), 0);

    for (const dev of devices) {
      const c = await mqtt.connectAsync(brokerUrl, { protocolVersion: 4, clientId: dev.id, clean: true, reconnectPeriod: 0 });
      clients.push(c);
      c.on('message', (_t, payload) => {
        if (payload.length === 0) return;
        const upTo = verifyJournalAck(payload, key, dev.id, PER).upTo;
        if (upTo > dev.acked) [dev.acked, dev.ackAt] = [upTo, performance.now()];
      });
      await c.subscribeAsync(topics.journalAck(dev.id), { qos: 1 });
    }

    const pgPids = postgresPids(pg);
    const cpu0 = {
      bench: process.cpuUsage(),
      servers: children.map((c) => cpuMs(c.pid!)),
      postgres: pgPids.reduce((s, p) => s + cpuMs(p), 0),
      mosquitto: cpuMs(mosq.pid!),
    };
    const load0 = loadavg()[0]!;
    const t0 = performance.now() + performance.timeOrigin;
    // each device as device/sync/client.ts pumps: one publish at a time (QoS 1, PUBACK), at most WINDOW ahead of its ack
    let lastAck = 0;
    let resent = 0;
    await Promise.all(
      devices.map(async (dev, i) => {
        const c = clients[i]!;
        dev.ackAt = performance.now();
        while (dev.acked < PER) {
          // no ack for ACK_TIMEOUT_MS while entries are out: send again from the ack (the device's ackTimeoutMs)
          if (dev.sent > 0 && performance.now() - dev.ackAt > ACK_TIMEOUT_MS) {
            dev.sent = Math.floor(dev.acked / BATCH);
            dev.ackAt = performance.now();
            resent++;
          }
          const next = dev.bodies[dev.sent];
          if (next && next.upTo - dev.acked <= WINDOW) {
            await c.publishAsync(topics.journal(dev.id), next.body, { qos: 1 });
            dev.sent++;
          } else await new Promise((r) => setTimeout(r, 2));
        }
        lastAck = Math.max(lastAck, performance.now() + performance.timeOrigin);
      }),
    );
    const t1 = lastAck;
    const cpu = {
      bench: Math.round((process.cpuUsage(cpu0.bench).user + process.cpuUsage(cpu0.bench).system) / 1000),
      servers: children.map((c, i) => cpuMs(c.pid!) - cpu0.servers[i]!),
      postgres: postgresPids(pg).reduce((s, p) => s + cpuMs(p), 0) - cpu0.postgres,
      mosquitto: cpuMs(mosq.pid!) - cpu0.mosquitto,
    };
    const load1 = loadavg()[0]!;
    await new Promise((r) => setTimeout(r, 300)); // the last samples of the instances' counters
    const total = DEVICES * PER;
    const ms = t1 - t0;
    const perSec = Math.round(total / (ms / 1000));
    // server side: from the last sample with nothing stored to the first with everything (summed over instances)
    const times = [...new Set(stored.flatMap((s) => s.filter((_v, k) => k % 2 === 0)))].sort((a, b) => a - b);
    const storedAt = (t: number) =>
      stored.reduce((sum, s) => {
        let v = 0;
        for (let k = 0; k < s.length; k += 2) if (s[k]! <= t) v = s[k + 1]!;
        return sum + v;
      }, 0);
    // the last sample before anything was stored (the samples are 100 ms apart: this errs on the slow side)
    const first = times.filter((t) => storedAt(t) === 0).pop() ?? t0;
    const done = times.find((t) => storedAt(t) >= total) ?? t1;
    const storedTotal = storedAt(Infinity);
    const serverPerSec = Math.round(storedTotal / Math.max(0.001, (done - first) / 1000));
    const perInstance = stored.map((s) => s[s.length - 1] ?? 0);
    // exactly once: the journal holds each entry once, whatever was resent or went to which instance
    const reg = url ? new PgDb({ url }) : new Database(join(dir, 'srv0', 'registry.sqlite'), { readonly: true });
    const inJournal = reg.prepare("SELECT count(*) AS n, count(DISTINCT device || ':' || seq) AS d FROM journal WHERE device LIKE 'bench-ing-%'").get() as {
      n: number;
      d: number;
    };
    reg.close();
    if (inJournal.n !== total || inJournal.d !== total) throw new Error(`the journal holds ${inJournal.n} rows (${inJournal.d} distinct), not ${total}`);
    const wall = ms / 1000;
    const share = (c: number) => `${Math.round(c)} ms (${round((c / 10 / wall) | 0, 0)} % of a core)`;
    console.log(
      `${database}, ${instances} instance(s)${shared ? ', shared ingest' : ''}: ${DEVICES} devices × ${PER} entries in batches of ${BATCH} ` +
        `(${round(bytes / 1e6)} MB of JSON), window ${WINDOW}`,
    );
    console.log(`acknowledged: ${total} entries in ${Math.round(ms)} ms = ${perSec} entries/s (load average ${load0.toFixed(1)} → ${load1.toFixed(1)})`);
    if (resent > 0) console.log(`resent after ${ACK_TIMEOUT_MS} ms without an ack: ${resent} times`);
    if (logLines > 0) console.log(`the instances logged ${logLines} lines (first 20 on stderr)`);
    console.log(`journal: ${inJournal.n} rows, each entry once`);
    console.log(`stored by the servers: ${storedTotal} (${perInstance.join(' + ')}), ${serverPerSec} entries/s from the first stored to the last`);
    console.log(
      `CPU during the run: ${children.map((_c, i) => `instance ${i} (${leaders[i]}) ${share(cpu.servers[i]!)}`).join(', ')}, ` +
        `PostgreSQL ${share(cpu.postgres)}, Mosquitto ${share(cpu.mosquitto)}, bench+devices ${share(cpu.bench)}`,
    );
    console.log(
      JSON.stringify({
        database,
        instances,
        sharedIngest: shared,
        devices: DEVICES,
        entries: total,
        batch: BATCH,
        ackedPerSec: perSec,
        ackedMs: Math.round(ms),
        resent,
        serverLogLines: logLines,
        serverStoredPerSec: serverPerSec,
        storedPerInstance: perInstance,
        cpuMs: { servers: cpu.servers, postgres: cpu.postgres, mosquitto: cpu.mosquitto, bench: cpu.bench },
        loadAvg: [round(load0), round(load1)],
      }),
    );
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    for (const c of children) {
      if (c.exitCode !== null) continue;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 15_000))]);
      if (c.exitCode === null) c.kill('SIGKILL');
    }
    mosq?.kill('SIGKILL');
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
