// npm run bench:usage-latency [-- --devices 1000] [--samples 60] [--modes embedded,mosquitto]
//
// Issue 10 figure: a tap on bus A reflected in bus B's fleet usage, p99 ≤ 2 s, with 1,000 devices
// connected, on the embedded broker and on Mosquitto. The sync-server runs in this process with its
// real 1 s usage tick; buses A and B are harness devices (a real SQLite store + the real sync client,
// B applies the usage); the other devices are light MQTT clients in a child process, subscribed like
// buses to the lists, the configs and the usage topics (every usage delta fans out to all of them).
// Each sample: a fresh card taps on bus A at a random phase of the tick; the time until bus B's store
// shows that tap's fare in its usage view. Last line: one JSON object.
import { mkdtempSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import mqtt from 'mqtt';
import type { Config } from '../../device/config/schema.js';
import { processTap } from '../../device/runtime/process-tap.js';
import { Store } from '../../device/store/index.js';
import { usageContext } from '../../device/store/usage-merge.js';
import { SyncClient } from '../../device/sync/index.js';
import { RulesFile } from '../../protocol/rules-schema.js';
import { topics } from '../../protocol/wire/topics.js';
import { cardsCsv, tokenOf } from '../support/registry-csv.js';
import { busConfig, importText, startStack, testLogger, type Mode } from '../support/sync-harness.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
}

// ---- child: the light devices --------------------------------------------------------------
if (process.argv.includes('--light-child')) {
  const url = arg('url', '');
  const n = Number(arg('devices', '1000'));
  let received = 0;
  let connected = 0;
  const clients: mqtt.MqttClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = mqtt.connect(url, { protocolVersion: 4, clientId: `light-${i}`, clean: true, reconnectPeriod: 1000, keepalive: 60 });
    c.on('connect', () => {
      connected++;
      c.subscribe([topics.manifest('transit'), topics.manifest('stoplist'), topics.configAll(), topics.usageSnapshot(), topics.usageDelta()], { qos: 1 });
      if (connected === n) process.stdout.write(JSON.stringify({ ready: n }) + '\n');
    });
    c.on('message', () => received++);
    clients.push(c);
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20)); // do not flood the broker's accept queue
  }
  setInterval(() => process.stdout.write(JSON.stringify({ connected: clients.filter((c) => c.connected).length, received }) + '\n'), 2000);
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
} else {
  await main();
}

interface Bus {
  cfg: Config;
  store: Store;
  client: SyncClient;
  close(): Promise<void>;
}

async function main(): Promise<void> {
  const devices = Number(arg('devices', '1000'));
  const samples = Number(arg('samples', '60'));
  const modes = arg('modes', 'embedded,mosquitto').split(',') as Mode[];
  const RULES = RulesFile.parse({
    schema: 1,
    tariff: {
      version: 1,
      routes: { '1': { fullFareKopecks: 3500 }, '2': { fullFareKopecks: 3500 } },
      benefits: {},
      repeatWindowSec: 60,
      dailyCapKopecks: 100_000,
    },
  });
  const tariff = RULES.tariff!;
  const out: Record<string, unknown> = { devices, samples, cores: cpus().length };
  for (const mode of modes) {
    const stack = await startStack(mode);
    const dirs: string[] = [];
    const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, '--light-child', '--url', stack.brokerUrl, '--devices', String(devices)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let light = { connected: 0, received: 0 };
    const ready = new Promise<void>((resolve) =>
      createInterface({ input: child.stdout! }).on('line', (l) => {
        const m = JSON.parse(l) as { ready?: number; connected?: number; received?: number };
        if (m.ready) resolve();
        if (m.connected !== undefined) light = { connected: m.connected, received: m.received ?? 0 };
      }),
    );
    const openBus = (id: string, route: string): Bus => {
      const dir = mkdtempSync(join(tmpdir(), 'rc-usage-lat-'));
      dirs.push(dir);
      const base = busConfig(id);
      const cfg = { ...base, device: { ...base.device, id, route, vehicle: `v-${id}` }, tariff } as Config;
      const store = Store.open(join(dir, 'device.sqlite'), { deviceId: id });
      store.setUsageContext(usageContext(tariff));
      const client = new SyncClient({
        store,
        deviceId: id,
        brokerUrl: stack.brokerUrl,
        scopes: ['transit', 'stoplist'],
        serverPublicKey: stack.server.publicKeyPem,
        stagingDir: join(dir, 'staging'),
        log: testLogger(),
        usageStore: store,
      });
      client.start();
      return {
        cfg,
        store,
        client,
        async close() {
          await client.stop();
          store.close();
        },
      };
    };
    let a: Bus | null = null;
    let b: Bus | null = null;
    try {
      await importText(stack, 'cards', cardsCsv(0, samples + 10));
      stack.server.publisher.setConfig('rules', RULES);
      await stack.server.publisher.publishConfigs('rules');
      const t0 = Date.now();
      await ready;
      const connectSec = (Date.now() - t0) / 1000;
      a = openBus('bus-a', '1');
      b = openBus('bus-b', '2');
      const busA = a;
      const busB = b;
      await waitUntil(() => busA.store.listVersion('transit') > 0 && busB.store.listVersion('transit') > 0, 60_000, 'transit lists on the two buses');
      const today = () => new Date().toLocaleDateString('sv-SE', { timeZone: 'Europe/Moscow' });
      const lat: number[] = [];
      const ackLat: number[] = []; // tap → bus A holds the server's ack (upload, store, group commit, ack back)
      const loads: number[] = [];
      let ackedAt = 0;
      busA.client.on('acked', () => (ackedAt = Date.now()));
      let mono = 1_000_000;
      for (let i = 0; i < samples; i++) {
        await new Promise((r) => setTimeout(r, Math.random() * 1000)); // a random phase of the server's 1 s tick
        const token = tokenOf(i);
        mono += 10_000_000;
        const tap = Date.now();
        ackedAt = 0;
        processTap(busA.store, { wallTime: tap, monotonicMs: mono, bootId: 'lat', direction: null, card: { token, expiry: null } }, busA.cfg);
        busA.client.notify(); // as the runtime does after every tap: the journal goes up at once
        await waitUntil(() => (busB.store.readView(token).counters[`fare@${today()}`] ?? 0) >= 3500, 30_000, `sample ${i} on bus B`, 5);
        lat.push(Date.now() - tap);
        ackLat.push((ackedAt || Date.now()) - tap);
        loads.push(loadavg()[0]!);
      }
      lat.sort((x, y) => x - y);
      ackLat.sort((x, y) => x - y);
      const q = (p: number, xs = lat) => xs[Math.min(xs.length - 1, Math.ceil(p * xs.length) - 1)]!;
      const r = {
        p50Ms: q(0.5),
        p90Ms: q(0.9),
        p99Ms: q(0.99),
        maxMs: lat[lat.length - 1]!,
        ackP50Ms: q(0.5, ackLat),
        ackP99Ms: q(0.99, ackLat),
        lightConnected: light.connected,
        lightMessages: light.received,
        connectSec: Math.round(connectSec * 10) / 10,
        loadAvg: Math.round((loads.reduce((x, y) => x + y, 0) / loads.length) * 10) / 10,
      };
      out[mode] = r;
      console.log(
        `[${mode}] ${devices} light devices connected (${r.lightConnected} at the end, ${r.connectSec} s to connect), ${samples} taps on bus A → bus B's usage: ` +
          `p50 ${r.p50Ms} ms, p90 ${r.p90Ms} ms, p99 ${r.p99Ms} ms, max ${r.maxMs} ms (of which tap → ack on bus A: p50 ${r.ackP50Ms} ms, p99 ${r.ackP99Ms} ms); ` +
          `load average ${r.loadAvg} on ${cpus().length} cores`,
      );
    } finally {
      await a?.close().catch(() => undefined);
      await b?.close().catch(() => undefined);
      child.stdin!.end();
      child.kill('SIGTERM');
      await stack.close();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  }
  console.log(JSON.stringify(out));
  process.exit(0);
}

async function waitUntil(f: () => boolean, timeoutMs: number, what: string, everyMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
