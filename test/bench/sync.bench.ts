/**
 * npm run bench:sync [-- --broker embedded|mosquitto] [--entries N]
 *
 * snapshot:  1,000,000-entry transit list imported (CSV rows tokenised), then a
 *            fresh device downloads the chunked snapshot, verifies and applies it
 *            (from the publish being on the broker to applied in the device store)
 * delta:     10,000 changed entries published; time until applied on that device
 * fan-out:   one stop-list delta to 1,000 connected lightweight clients (verify signature)
 * ingest:    journal entries acknowledged per second (batches of 500 over MQTT from 10 devices, each entry a card
 *            not seen before, settlement on), then the time until all of them are settled (the back office
 *            settles after the acks, in slices of a few ms; the bench waits for it to catch up)
 * The last line is one JSON object.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { Store } from '../../device/store/index.js';
import { SyncClient } from '../../device/sync/index.js';
import { createLogger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { loadPublicKey } from '../../protocol/wire/envelope.js';
import { topics } from '../../protocol/wire/topics.js';
import { verifyDelta, verifyJournalAck } from '../../protocol/wire/verify.js';
import { startServer } from '../../sync-server/server.js';
import { applyImport, parseImport } from '../../sync-server/import.js';
import { tokenOf } from '../support/registry-csv.js';
import { syntheticPan, syntheticPsn } from '../support/pans.js';
import { mosquittoRig, type RunningBroker } from '../support/rig/broker.js';
import { waitFor } from '../support/wait.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const brokerKind = arg('broker', 'embedded');
const N = Number(arg('entries', '1000000'));
const FANOUT = Number(arg('fanout', '1000'));
const log = createLogger({ level: 'warn' });

async function* cardLines(n: number): AsyncIterable<string> {
  yield 'person_id,pan,psn,expiry\n';
  for (let i = 0; i < n; i++) yield `p${i},${syntheticPan(i)},${syntheticPsn(i)},2031-06\n`;
}
async function* benefitLines(from: number, n: number): AsyncIterable<string> {
  yield 'person_id,category,valid_from,valid_to\n';
  for (let i = from; i < from + n; i++) yield `p${i},pensioner,2026-01-01,2027-12-31\n`;
}

const dir = mkdtempSync(join(tmpdir(), 'rc-bench-sync-'));
let broker: RunningBroker | null = null;
if (brokerKind === 'mosquitto') broker = await mosquittoRig.start();
const server = await startServer({
  dataDir: join(dir, 'srv'),
  mqttPort: 0,
  ...(broker ? { brokerUrl: broker.url } : {}),
  httpPort: 0,
  tokenKey: DEV_TOKEN_KEY,
  log,
  // this measures the server's ingest capacity: the per-device rate limit (100 entries/s after a burst) is lifted
  ingestLimits: { burst: Number.MAX_SAFE_INTEGER, perSecond: Number.MAX_SAFE_INTEGER },
});
console.log(`broker: ${brokerKind} ${server.mqttUrl}`);
const clients: MqttClient[] = [];
try {
  // --- import + snapshot ---
  let t = Date.now();
  // the server's own import (staged, short transactions: sync-server/import-stage.ts), which also publishes
  const { report } = await server.api.importCsv('cards', cardLines(N), false);
  const importMs = Date.now() - t;
  console.log(`import ${report.rows} card rows (validate, tokenise, stage, apply, new version, publish): ${importMs} ms`);
  const chunkBytes = server.db
    .prepare("SELECT sum(length(payload)) FROM chunks WHERE scope = 'transit' AND version = ?")
    .pluck()
    .get(server.publisher.version('transit')) as number;
  const bytesPerEntry = chunkBytes / N;

  const ddir = join(dir, 'dev');
  const store = Store.open(join(dir, 'device.sqlite'), { deviceId: 'bench-dev' });
  const dev = new SyncClient({
    store,
    deviceId: 'bench-dev',
    brokerUrl: server.mqttUrl,
    scopes: ['transit', 'stoplist'],
    serverPublicKey: server.publicKeyPem,
    stagingDir: ddir,
    log,
  });
  const want = server.publisher.version('transit');
  t = Date.now();
  dev.start();
  await waitFor(() => store.listVersion('transit') === want, { timeoutMs: 300_000, what: 'snapshot applied', everyMs: 2 });
  const snapshotMs = Date.now() - t;
  console.log(`snapshot of ${store.entryCount('transit')} entries to a device: ${snapshotMs} ms, ${bytesPerEntry.toFixed(2)} B/entry on the wire`);

  // --- delta of 10,000 ---
  const b = await parseImport('benefits', benefitLines(1000, 10_000), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: '2026-11-24' });
  const ch2 = server.publisher.commit(applyImport(server.db, 'benefits', b.rows, '2026-11-24'));
  const want2 = server.publisher.version('transit');
  t = Date.now();
  const pub = server.publisher.publish(ch2);
  await waitFor(() => store.listVersion('transit') === want2, { timeoutMs: 60_000, what: 'delta applied', everyMs: 2 });
  const delta10kMs = Date.now() - t;
  await pub;
  console.log(
    `delta of 10,000 entries to the device: ${delta10kMs} ms (view of p1000: ${JSON.stringify(store.readView(tokenOf(1000, '2031-06')).transit?.benefits)})`,
  );
  await dev.stop();
  store.close();

  // --- fan-out to 1,000 lightweight clients ---
  const key = loadPublicKey(server.publicKeyPem);
  const held = server.publisher.version('stoplist');
  let got = 0;
  for (let i = 0; i < FANOUT; i++) {
    const c = mqtt.connect(server.mqttUrl, { protocolVersion: 4, clientId: `fan-${i}`, reconnectPeriod: 1000, connectTimeout: 10_000 });
    clients.push(c);
    c.on('message', (_topic, payload, packet) => {
      if (packet.retain || payload.length === 0) return;
      verifyDelta(payload, { key, scope: 'stoplist', held, now: new Date() });
      got++;
    });
  }
  // every wait is bounded and says what it waited for (a lost CONNACK or SUBACK used to hang this bench for good)
  await waitFor(() => clients.every((c) => c.connected), {
    timeoutMs: 60_000,
    what: () => `CONNACK for all ${FANOUT} fan-out clients (${clients.filter((c) => c.connected).length} connected)`,
  });
  let subscribed = 0;
  for (const c of clients) void c.subscribeAsync(topics.deltaAll('stoplist'), { qos: 1 }).then(() => void subscribed++);
  await waitFor(() => subscribed === FANOUT, { timeoutMs: 60_000, what: () => `SUBACK for all ${FANOUT} fan-out clients (${subscribed} subscribed)` });
  const s = await parseImport(
    'stoplist',
    (async function* () {
      yield 'token,reason\n';
      yield `${tokenOf(5, '2031-06')},lost\n`;
    })(),
    { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: '2026-11-24' },
  );
  const ch3 = server.publisher.commit(applyImport(server.db, 'stoplist', s.rows, '2026-11-24'));
  t = Date.now();
  await server.publisher.publish(ch3);
  await waitFor(() => got >= FANOUT, { timeoutMs: 60_000, what: 'fan-out', everyMs: 2 });
  const fanoutMs = Date.now() - t;
  console.log(`fan-out of one delta to ${FANOUT} clients: ${fanoutMs} ms`);
  await Promise.all(clients.map((c) => c.endAsync(true)));
  clients.length = 0;

  // --- ingest ---
  const DEVICES = 10;
  const PER = 20_000;
  const ingestClients = await Promise.all(
    Array.from({ length: DEVICES }, (_, d) => mqtt.connectAsync(server.mqttUrl, { protocolVersion: 4, clientId: `ing-${d}` })),
  );
  clients.push(...ingestClients);
  const batches: { c: MqttClient; topic: string; body: Buffer }[][] = ingestClients.map((c, d) => {
    const out = [];
    for (let s0 = 1; s0 <= PER; s0 += 500) {
      const entries = [];
      for (let q = s0; q < s0 + 500; q++)
        entries.push({
          seq: q,
          time: '2026-11-24T10:00:00.000Z',
          // a card taps a few times a day: one entry per card here (the same card 200 times at one instant on ten buses
          // makes every entry scan the card's other entries for impossible trips, see ingest.ts)
          token: tokenOf(d * PER + q, '2031-06'),
          kind: 'bus',
          result: 'allow',
          reason: 'benefit',
          fareKopecks: 0,
          benefit: 'pensioner',
          lists: { transit: 2 },
        });
      out.push({ c, topic: topics.journal(`ing-${d}`), body: Buffer.from(JSON.stringify({ device: `ing-${d}`, entries })) });
    }
    return out;
  });
  // acks (signed, retained): the device's ack rate is what the fleet feels; settlement runs after the acks, in slices
  const acked = new Map<string, number>();
  for (const [d, c] of ingestClients.entries()) {
    c.on('message', (_t, payload) => {
      if (payload.length > 0) acked.set(`ing-${d}`, verifyJournalAck(payload, key, `ing-${d}`, PER).upTo);
    });
    await c.subscribeAsync(topics.journalAck(`ing-${d}`), { qos: 1 });
  }
  const count = server.db.prepare('SELECT count(*) FROM journal').pluck();
  const anyDirty = server.db.prepare('SELECT 1 FROM settle_dirty LIMIT 1').pluck();
  const before = count.get() as number;
  const cpu0 = process.cpuUsage();
  const load0 = loadavg()[0]!;
  t = Date.now();
  await Promise.all(
    batches.map(async (bs) => {
      for (const x of bs) await x.c.publishAsync(x.topic, x.body, { qos: 1 });
    }),
  );
  await waitFor(() => acked.size === DEVICES && [...acked.values()].every((u) => u >= PER), { timeoutMs: 300_000, what: 'ingest acks', everyMs: 2 });
  const ingestMs = Date.now() - t;
  const ingestPerSec = Math.round((DEVICES * PER) / (ingestMs / 1000));
  const cpuIngest = process.cpuUsage(cpu0);
  // the machine may be shared: the process's CPU time per entry says what wall time alone cannot
  const ingestCpuUsPerEntry = Math.round(((cpuIngest.user + cpuIngest.system) / (DEVICES * PER)) * 10) / 10;
  const stored = (count.get() as number) - before;
  console.log(
    `ingest of ${DEVICES * PER} journal entries (all acknowledged, ${stored} stored): ${ingestMs} ms = ${ingestPerSec}/s; ` +
      `process CPU ${Math.round((cpuIngest.user + cpuIngest.system) / 1000)} ms (${ingestCpuUsPerEntry} µs/entry), load average ${load0.toFixed(1)}`,
  );
  const cpu1 = process.cpuUsage();
  // the back office catches up: every new entry settled (the bench waits for it; settlement never delays an ack)
  await waitFor(() => anyDirty.get() === undefined, { timeoutMs: 600_000, what: 'settlement caught up', everyMs: 20 });
  const settledMs = Date.now() - t;
  const cpuSettle = process.cpuUsage(cpu1);
  const settleCpuMs = Math.round((cpuSettle.user + cpuSettle.system) / 1000);
  const unsettled = server.db
    .prepare("SELECT count(*) FROM journal WHERE device LIKE 'ing-%' AND settled_reason IS NULL AND settle_code IS NULL")
    .pluck()
    .get() as number;
  if (unsettled !== 0) throw new Error(`${unsettled} ingested entries left unsettled`);
  console.log(
    `settled: all ${DEVICES * PER} entries ${settledMs} ms after the first upload (${settledMs - ingestMs} ms after the last ack; ` +
      `process CPU after the last ack ${settleCpuMs} ms), load average ${loadavg()[0]!.toFixed(1)}`,
  );

  const out = {
    snapshotEntries: N,
    snapshotMs,
    bytesPerEntry: Math.round(bytesPerEntry * 100) / 100,
    delta10kMs,
    fanoutDevices: FANOUT,
    fanoutMs,
    ingestPerSec,
    ingestCpuUsPerEntry,
    ingestSettledMs: settledMs,
    settleAfterAckMs: settledMs - ingestMs,
    settleCpuMs,
    loadAvg: Math.round(loadavg()[0]! * 10) / 10,
    importMs,
    broker: brokerKind,
  };
  console.log(JSON.stringify(out));
} finally {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
  await server.close();
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
}
