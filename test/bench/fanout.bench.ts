// npm run bench:fanout [-- --devices 10000] [--modes mosquitto,nats-cluster] [--children 2] [--qos 0|1]
//
// Issue 16 figure: one list delta fanned out to N connected devices, time until every device has it (≤ 10 s for
// 10,000), on Mosquitto and on the 3-node NATS cluster. The sync-server runs in this process; the operator imports
// one stop-list row, the server publishes the delta; the devices are light MQTT clients in child processes, each
// subscribed as a bus is (QoS 0, as device/sync/mqtt-transport.ts does: the stop-list manifest and its deltas, the
// transit manifest and deltas, the configs and its own journal-ack), spread over the cluster's nodes. The clock starts
// just before the import (one import before the devices warms the server up). On the cluster it also reads each node's
// /varz (memory, connections) and /jsz (JetStream consumers) before the devices and once all are subscribed.
// `--qos 1` subscribes as devices did before (one JetStream consumer per subscription on NATS).
// Last line: one JSON object.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import mqtt from 'mqtt';
import { topics } from '../../protocol/wire/topics.js';
import { testDevicePassword, importText, startStack, type Mode } from '../support/sync-harness.js';
import { tokenOf } from '../support/registry-csv.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
}

const BENCH_USER = 'bench-device';

// ---- child: the light devices --------------------------------------------------------------
if (process.argv.includes('--light-child')) {
  const urls = arg('urls', '').split(',');
  const from = Number(arg('from', '0'));
  const n = Number(arg('devices', '1000'));
  const user = arg('user', '');
  const qos = Number(arg('qos', '0')) === 1 ? 1 : 0;
  const clients: mqtt.MqttClient[] = [];
  let ready = 0;
  let want = '';
  let t0 = 0;
  const got = new Map<number, number>();
  const say = (s: string) => process.stdout.write(s + '\n');
  const open = (i: number) =>
    new Promise<void>((res) => {
      const id = `bus-fan-${from + i}`;
      const c = mqtt.connect(urls[(from + i) % urls.length]!, {
        protocolVersion: 4,
        clientId: id,
        clean: true,
        reconnectPeriod: 2000,
        keepalive: 120,
        connectTimeout: 30_000,
        ...(user ? { username: user, password: testDevicePassword(user) } : {}),
      });
      c.on('error', () => undefined);
      let subscribed = false;
      c.on('connect', () => {
        const subs = [
          topics.journalAck(user || id),
          topics.configAll(),
          topics.manifest('stoplist'),
          topics.deltaAll('stoplist'),
          topics.manifest('transit'),
          topics.deltaAll('transit'),
        ];
        const sub = (k: number): void =>
          void c.subscribeAsync(subs, { qos }).then(
            () => {
              if (!subscribed) {
                subscribed = true;
                ready++;
                res();
              }
            },
            () => k < 10 && setTimeout(() => sub(k + 1), 1000),
          );
        sub(0);
      });
      c.on('message', (topic) => {
        if (want && topic === want && !got.has(i)) {
          got.set(i, Date.now() - t0);
          if (got.size === n) say(`done ${JSON.stringify([...got.values()].sort((a, b) => a - b))}`);
        }
      });
      clients.push(c);
    });
  // at most 100 connections opening at once
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(100, n) }, async () => {
      while (next < n) await open(next++);
    }),
  );
  say(`ready ${ready}`);
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [cmd, arg1] = line.split(' ');
    if (cmd === 'expect') {
      want = arg1!;
      got.clear();
      t0 = Date.now();
    } else if (cmd === 'report') say(`got ${got.size}`);
    else if (cmd === 'quit') {
      for (const c of clients) c.end(true);
      process.exit(0);
    }
  });
} else {
  await main();
}

interface Child {
  proc: ChildProcess;
  lines: AsyncIterator<string>;
}

function child(urls: string[], from: number, n: number, user: string, qos: number): Child {
  const proc = spawn(
    process.execPath,
    [
      ...process.execArgv,
      process.argv[1]!,
      '--light-child',
      '--urls',
      urls.join(','),
      '--from',
      String(from),
      '--devices',
      String(n),
      '--user',
      user,
      '--qos',
      String(qos),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  return { proc, lines: createInterface({ input: proc.stdout! })[Symbol.asyncIterator]() };
}

async function nextLine(c: Child, prefix: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await Promise.race([c.lines.next(), new Promise<null>((res) => setTimeout(() => res(null), Math.max(0, deadline - Date.now())))]);
    if (r === null) throw new Error(`no "${prefix}" from a device child within ${timeoutMs} ms`);
    if (r.done) throw new Error('device child exited');
    if (r.value.startsWith(prefix)) return r.value.slice(prefix.length).trim();
  }
}

interface NodeFigures {
  /** resident memory (bytes), as /varz says */
  mem: number;
  connections: number;
  /** JetStream consumers this node holds (R1 consumers: each on one node) */
  consumers: number;
}

/** /varz and /jsz of every node of the cluster. */
async function nodeFigures(monitorUrls: readonly string[]): Promise<NodeFigures[]> {
  return Promise.all(
    monitorUrls.map(async (u) => {
      const get = async (path: string) => (await (await fetch(`${u}${path}`, { signal: AbortSignal.timeout(10_000) })).json()) as Record<string, unknown>;
      const varz = await get('/varz');
      const jsz = await get('/jsz');
      return { mem: Number(varz.mem), connections: Number(varz.connections), consumers: Number(jsz.consumers) };
    }),
  );
}

async function run(mode: Mode, devices: number, nChildren: number, qos: number) {
  // the cluster: every light device logs in as one bench user holding a bus's ACL (a real fleet has one user per device)
  const stack = await startStack(mode, { publisher: { chunkRecords: 2000 }, usageIntervalMs: 0 }, [{ id: BENCH_USER, scopes: ['transit', 'stoplist'] }]);
  const urls = stack.cluster ? stack.cluster.urls : [stack.brokerUrl];
  const user = stack.cluster ? BENCH_USER : '';
  const kids: Child[] = [];
  const mb = (b: number) => (b / 1048576).toFixed(0);
  try {
    // one import before the devices: the first one also starts the server's import worker thread (seconds under tsx),
    // which the first measured delta paid for (its "all" was 3-4 s above the next two's at any device count)
    await importText(stack, 'stoplist', `token,reason\n${tokenOf(899_999)},stolen\n`);
    const idle = stack.cluster ? await nodeFigures(stack.cluster.monitorUrls) : undefined;
    if (idle) console.log(`${mode}: nodes before the devices: ${idle.map((n, i) => `n${i + 1} ${mb(n.mem)} MB, ${n.consumers} consumers`).join('; ')}`);
    const t = Date.now();
    const per = Math.ceil(devices / nChildren);
    for (let k = 0; k < nChildren; k++) kids.push(child(urls, k * per, Math.min(per, devices - k * per), user, qos));
    const ready = (await Promise.all(kids.map((c) => nextLine(c, 'ready', 600_000)))).reduce((a, b) => a + Number(b), 0);
    const connectMs = Date.now() - t;
    console.log(
      `${mode}: ${ready} devices connected and subscribed (QoS ${qos}) in ${connectMs} ms; load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    const nodes = stack.cluster ? await nodeFigures(stack.cluster.monitorUrls) : undefined;
    if (nodes) {
      console.log(`${mode}: nodes ${nodes.map((n, i) => `n${i + 1} ${mb(n.mem)} MB, ${n.connections} connections, ${n.consumers} consumers`).join('; ')}`);
    }
    const samples: { p50: number; p99: number; max: number; received: number }[] = [];
    for (let s = 0; s < 3; s++) {
      const v = stack.server.publisher.version('stoplist');
      const topic = topics.delta('stoplist', v, v + 1);
      for (const c of kids) c.proc.stdin!.write(`expect ${topic}\n`);
      await new Promise((r) => setTimeout(r, 200));
      await importText(stack, 'stoplist', `token,reason\n${tokenOf(900_000 + s)},stolen\n`);
      let all: number[] = [];
      try {
        const per = await Promise.all(kids.map((c) => nextLine(c, 'done', 120_000)));
        all = per.flatMap((p) => JSON.parse(p) as number[]).sort((a, b) => a - b);
      } catch (e) {
        for (const c of kids) c.proc.stdin!.write('report\n');
        const got = (await Promise.all(kids.map((c) => nextLine(c, 'got', 10_000)))).reduce((a, b) => a + Number(b), 0);
        throw new Error(`${mode}: only ${got} of ${ready} devices got the delta within 120 s`, { cause: e });
      }
      const q = (p: number) => all[Math.min(all.length - 1, Math.floor(p * all.length))]!;
      samples.push({ p50: q(0.5), p99: q(0.99), max: all.at(-1)!, received: all.length });
      console.log(
        `${mode}: delta ${v}→${v + 1} at ${all.length} devices: p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, all ${all.at(-1)} ms; load ${loadavg()[0]!.toFixed(1)}`,
      );
    }
    return { mode, qos, devices: ready, connectMs, samples, worstAllMs: Math.max(...samples.map((s) => s.max)), ...(nodes ? { nodesIdle: idle, nodes } : {}) };
  } finally {
    for (const c of kids) {
      c.proc.stdin!.write('quit\n');
      await new Promise((r) => (c.proc.exitCode !== null ? r(null) : c.proc.once('exit', r)));
    }
    await stack.close();
  }
}

async function main() {
  const devices = Number(arg('devices', '10000'));
  const modes = arg('modes', 'mosquitto,nats-cluster').split(',') as Mode[];
  const nChildren = Number(arg('children', devices > 2000 ? '4' : '1'));
  const qos = Number(arg('qos', '0')) === 1 ? 1 : 0;
  console.log(`fan-out of one delta to ${devices} devices; ${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)}`);
  const results = [];
  for (const m of modes) {
    try {
      results.push(await run(m, devices, nChildren, qos));
    } catch (e) {
      console.log(`${m}: FAILED ${(e as Error).message}`);
      results.push({ mode: m, devices, error: (e as Error).message });
    }
  }
  console.log(JSON.stringify({ bench: 'fanout', devices, cores: cpus().length, load: Number(loadavg()[0]!.toFixed(1)), results }));
  process.exit(0);
}
