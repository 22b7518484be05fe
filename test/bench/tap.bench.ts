/**
 * `npm run bench:tap`: one tap end to end on the real stack — card present
 * (the PC/SC card-inserted event) → Mir read through a private pcscd (with
 * the TCP_NODELAY shim) and vpcd to a virtual card in a child process →
 * token → decide → durable journal commit (SQLite WAL, synchronous=FULL) →
 * the display command sent to an RCP/1 display simulator (a child process)
 * on a socat pty. Reports, per tap, card present → signal sent (the command
 * handed to the serial driver, after the commit), and → acknowledged by the
 * display. Last line: {"taps":…, "p50Ms":…, "p99Ms":…} (signal sent).
 * BENCH_TAPS=N (default 100). `-- --hsm`: the card-token key in a SoftHSM2 token
 * (a private one, outside the device dir), the HMAC computed inside it, as a
 * device with `tokenKey.pkcs11` derives. `-- --hsm --rotating`: the token holds
 * v1 and v2 (a rotation under way, docs/token-key.md): every tap derives both and,
 * the cards being unknown, looks both up (the worst case).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { loadConfig } from '../../device/config/load.js';
import { createPeripheral } from '../../device/io/factory.js';
import type { Display, DisplayMessage } from '../../device/io/types.js';
import { PcscReaderSource } from '../../device/reader/pcsc.js';
import { Runtime } from '../../device/runtime/runtime.js';
import { Store } from '../../device/store/index.js';
import { createLogger } from '../../protocol/log.js';
import { withLuhnDigit } from '../../protocol/pan.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { Pkcs11Token, newTokenKey, type TokenDeriver } from '../../protocol/token-hsm.js';
import { softhsmAvailable, startSoftHsm, type SoftHsmRig } from '../support/rig/softhsm.js';
import { PcscdRig } from '../support/rig/pcscd.js';
import { createPtyPair } from '../support/rig/pty.js';
import { VcardHost, PROJECT_ROOT } from '../support/rig/vcards.js';

const TAPS = Number(process.env.BENCH_TAPS ?? 100);
const HSM = process.argv.includes('--hsm');
const ROTATING = HSM && process.argv.includes('--rotating');

const q = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rc-bench-tap-'));
  const rig = await PcscdRig.create({ nodelay: true });
  rig.useAsClient();
  const host = await VcardHost.start();
  const pty = await createPtyPair();
  const sim = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'test', 'support', 'sim', 'display-sim.ts'), '--port', pty.b], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const simExited = new Promise<void>((r) => sim.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('display simulator did not start')), 20_000);
    createInterface({ input: sim.stdout! }).on('line', (l) => {
      if (l.includes('"ready"')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const log = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const cfg = loadConfig({
    schema: 1,
    device: { id: 'bench-bus', kind: 'bus', route: '7' },
    tariff: { routes: { '7': { fullFareKopecks: 3500 } }, benefits: { pensioner: { kind: 'free' } } },
  });
  const store = Store.open(join(dir, 'device.sqlite'), { deviceId: cfg.device.id });
  const display = createPeripheral({ kind: 'display', port: pty.a, timing: { keepaliveMs: 0 } }, { log }) as Display;
  let sentAt = 0;
  // the display as the runtime sees it, marking the moment the command is handed to the serial driver
  const marked: Display = {
    name: display.name,
    kind: display.kind,
    protocol: display.protocol,
    port: display.port,
    start: () => display.start(),
    stop: () => display.stop(),
    health: () => display.health(),
    onHealth: (l) => display.onHealth(l),
    show(msg: DisplayMessage) {
      sentAt = performance.now();
      return display.show(msg);
    },
  };
  const source = await PcscReaderSource.create({ log });
  let hsm: SoftHsmRig | null = null;
  let tokenKey: typeof DEV_TOKEN_KEY | TokenDeriver = DEV_TOKEN_KEY;
  if (HSM) {
    if (!softhsmAvailable()) throw new Error('--hsm: SoftHSM2 is not installed (apt-get install softhsm2)');
    hsm = startSoftHsm('rc-bench');
    const token = Pkcs11Token.open(hsm);
    token.importKey(newTokenKey(1));
    if (ROTATING) token.importKey(newTokenKey(2));
    tokenKey = token.deriversUpTo(ROTATING ? 2 : 1);
  }
  const runtime = new Runtime({ config: cfg, store, source, peripherals: [{ peripheral: marked }], tokenKey, log });
  await runtime.start();
  let insertedAt = 0;
  const inserted = new Set<string>();
  const removedWaiters: (() => void)[] = [];
  source.on((e) => {
    if (e.type === 'card-inserted') {
      insertedAt = performance.now();
      inserted.add(e.reader);
    }
    if (e.type === 'card-removed') {
      inserted.delete(e.reader);
      removedWaiters.splice(0).forEach((w) => w());
    }
  });
  const deadline = Date.now() + 20_000;
  while (runtime.status().readers.length === 0 || display.health().status !== 'ok') {
    if (Date.now() > deadline) throw new Error(`not ready: readers ${runtime.status().readers.length}, display ${display.health().status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const slot = rig.slots[0]!;
  const sent: number[] = [];
  const acked: number[] = [];
  const commit: number[] = [];
  const read: number[] = [];
  const total = TAPS + 5; // 5 warm-up taps
  try {
    for (let i = 0; i < total; i++) {
      const pan = withLuhnDigit(`2200710${String(i).padStart(8, '0')}`);
      const done = runtime.nextTap();
      await host.insert(slot.port, { kind: 'emv', pan, expiry: '2029-06', psn: '01' });
      const t = await done;
      const ackMs = t.signalMs;
      if (t.reason !== 'full-fare') throw new Error(`unexpected decision ${t.result}/${t.reason}`);
      if (i >= 5) {
        // t.signalMs is measured from the runtime's own card-inserted time; sentAt/insertedAt are this listener's view of the same moments
        sent.push(sentAt - insertedAt);
        acked.push(ackMs);
        commit.push(t.commitMs);
        read.push(t.readMs);
      }
      const gone = new Promise<void>((r) => removedWaiters.push(r));
      await host.remove(slot.port);
      await gone;
    }
  } finally {
    await runtime.stop();
    sim.kill('SIGTERM');
    await simExited;
    await host.close();
    await rig.dispose();
    await pty.close();
    if (typeof tokenKey === 'object' && 'close' in tokenKey) tokenKey.close();
    hsm?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const s = [...sent].sort((a, b) => a - b);
  const a = [...acked].sort((x, y) => x - y);
  const c = [...commit].sort((x, y) => x - y);
  const rd = [...read].sort((x, y) => x - y);
  console.log(
    `tap: card present (PC/SC event) → Mir read via pcscd+vpcd (TCP_NODELAY shim on) → token (${HSM ? `HMAC inside SoftHSM2${ROTATING ? ', key versions 2 and 1' : ''}` : 'key in memory'}) → decide → journal commit (WAL, synchronous=FULL) → display command on a pty`,
  );
  console.log(`taps ${s.length}`);
  console.log(`card present → card read (token):  p50 ${r3(q(rd, 0.5))} ms, p99 ${r3(q(rd, 0.99))} ms`);
  console.log(`card present → journal committed: p50 ${r3(q(c, 0.5))} ms, p99 ${r3(q(c, 0.99))} ms`);
  console.log(`card present → signal sent:       p50 ${r3(q(s, 0.5))} ms, p99 ${r3(q(s, 0.99))} ms, max ${r3(s.at(-1)!)} ms`);
  console.log(`card present → display ACK:       p50 ${r3(q(a, 0.5))} ms, p99 ${r3(q(a, 0.99))} ms`);
  console.log(
    JSON.stringify({
      taps: s.length,
      p50Ms: r3(q(s, 0.5)),
      p99Ms: r3(q(s, 0.99)),
      ackP50Ms: r3(q(a, 0.5)),
      ackP99Ms: r3(q(a, 0.99)),
      readP50Ms: r3(q(rd, 0.5)),
      readP99Ms: r3(q(rd, 0.99)),
      commitP50Ms: r3(q(c, 0.5)),
      commitP99Ms: r3(q(c, 0.99)),
      nodelayShim: true,
      tokenKey: HSM ? 'softhsm2' : 'memory',
      keyVersions: ROTATING ? 2 : 1,
    }),
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
