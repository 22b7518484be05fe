/**
 * npm run bench:provision [-- --entries N] [--no-hardware] [--broker embedded|mosquitto]
 *
 * Provisioning one bus validator end to end against a sync-server (embedded
 * broker with per-device credentials, or a real Mosquitto on the password/ACL
 * files the server writes) that already holds an N-entry transit
 * list (default 100,000 cards, 10,000 of them with a benefit):
 *   initMs       rc-provision init: keys, enrolment over HTTP (one-time token,
 *                scrypt, sealed secrets), config validated, files written
 *   checkMs      rc-provision check, every item: config, disk, server identity,
 *                clock, pcscd + reader and a tapped virtual Mir card (private real
 *                pcscd + vpcd, TCP_NODELAY shim), the display over a socat pty
 *                with the simulator, broker credentials, and the first sync
 *   firstSyncMs  the first sync alone (inside checkMs): the 100,000-entry
 *                snapshot downloaded, verified and applied to the device store
 * In-process (the CLI commands call the same functions); the technician's
 * time to tap the card is not counted (the virtual card is inserted at the prompt).
 * --no-hardware skips pcscd, the card and the display (reader/card/peripherals items).
 * The last line is one JSON object.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { applyImport, parseImport } from '../../sync-server/import.js';
import { runCheck, type CheckId } from '../../provisioning/check.js';
import { initDevice } from '../../provisioning/ops.js';
import { syntheticPan, syntheticPsn } from '../support/pans.js';
import { startProvStack, type ProvMode } from '../support/provision-rig.js';

const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const N = Number(arg('entries', '100000'));
const hardware = !args.includes('--no-hardware');
const brokerKind = arg('broker', 'embedded') as ProvMode;
const log = createLogger({ level: 'warn' });

async function* cardLines(n: number): AsyncIterable<string> {
  yield 'person_id,pan,psn,expiry\n';
  for (let i = 0; i < n; i++) yield `p${i},${syntheticPan(i)},${syntheticPsn(i)},2031-06\n`;
}
async function* benefitLines(n: number): AsyncIterable<string> {
  yield 'person_id,category,valid_from,valid_to\n';
  for (let i = 0; i < n; i++) yield `p${i * 10},pensioner,2026-01-01,2027-12-31\n`;
}

const dir = mkdtempSync(join(tmpdir(), 'rc-bench-prov-'));
const cleanups: (() => Promise<unknown>)[] = [];
let exitCode = 0;
try {
  // ---- hardware rigs (not timed) ----
  let readerName: string | null = null;
  let displayPort: string | null = null;
  let insertCard: (() => void) | null = null;
  if (hardware) {
    const { PcscdRig } = await import('../support/rig/pcscd.js');
    const { VcardHost } = await import('../support/rig/vcards.js');
    const { createPtyPair } = await import('../support/rig/pty.js');
    const { spawn } = await import('node:child_process');
    const pcscd = await PcscdRig.create({ friendlyName: 'RC Bench PCD' });
    cleanups.push(() => pcscd.dispose());
    pcscd.useAsClient();
    const host = await VcardHost.start(pcscd.clientEnv());
    cleanups.push(() => host.close());
    const slot = pcscd.slots[0]!;
    readerName = slot.readerName;
    insertCard = () => void host.insert(slot.port, { kind: 'emv', pan: '2200700000000017', expiry: '2029-06', psn: '01' });
    const pty = await createPtyPair();
    cleanups.push(() => pty.close());
    const sim = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'support', 'sim', 'display-sim.ts'), '--port', pty.b], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          if (sim.exitCode !== null) return r();
          sim.once('exit', () => r());
          sim.kill('SIGTERM');
        }),
    );
    await new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error('display simulator did not start')), 20_000);
      sim.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('"ready"')) {
          clearTimeout(t);
          res();
        }
      });
    });
    displayPort = pty.a;
  }

  // ---- the operator's server with an N-entry transit list (not timed) ----
  const stack = await startProvStack(brokerKind);
  cleanups.unshift(() => stack.close());
  const server = stack.server;
  let t = Date.now();
  for (const [kind, lines] of [
    ['cards', cardLines(N)],
    ['benefits', benefitLines(Math.floor(N / 10))],
  ] as const) {
    const { rows } = await parseImport(kind, lines, { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: '2026-11-24' });
    const changed = server.publisher.commit(applyImport(server.db, kind, rows, '2026-11-24'));
    await server.publisher.publish(changed);
  }
  const entries = (server.db.prepare("SELECT entries FROM scopes WHERE scope = 'transit'").pluck().get() as number | undefined) ?? 0;
  console.log(`server ready: transit list v${server.publisher.version('transit')} with ${entries} entries (setup ${Date.now() - t} ms)`);
  const token = server.provisioning.createToken({ kind: 'bus', route: '7', ttlSec: 3600 }).token;

  // ---- init ----
  const devDir = join(dir, 'rc-device');
  const t0 = Date.now();
  const init = await initDevice({
    server: server.httpUrl,
    token,
    kind: 'bus',
    route: '7',
    vehicle: 'B100',
    dir: devDir,
    ...(readerName ? { reader: readerName } : {}),
    ...(displayPort ? { displayPort } : {}),
  });
  const initMs = Date.now() - t0;
  console.log(`init: device ${init.deviceId} in ${initMs} ms`);

  // ---- check (first sync included) ----
  let firstSyncMs = 0;
  const skip: CheckId[] = hardware ? [] : ['reader', 'card', 'peripherals'];
  t = Date.now();
  const report = await runCheck({
    dir: devDir,
    log,
    skip,
    cardTimeoutMs: 20_000,
    syncTimeoutMs: 120_000,
    onPrompt: () => insertCard?.(),
    onItem: (i) => {
      if (i.id === 'sync') firstSyncMs = i.ms;
      console.log(`${i.ok ? 'PASS' : 'FAIL'} ${i.id.padEnd(12)} ${String(i.ms).padStart(6)} ms  ${i.ok ? i.detail : `${i.code}: ${i.detail}`}`);
    },
  });
  const checkMs = Date.now() - t;
  const totalMs = Date.now() - t0;
  if (!report.ok) exitCode = 1;
  console.log(`check: ${report.ok ? 'all passed' : 'FAILED'} in ${checkMs} ms; total ${totalMs} ms (target ≤ 60000)`);
  console.log(JSON.stringify({ entries, initMs, checkMs, firstSyncMs, totalMs, checkOk: report.ok, hardware, broker: brokerKind }));
} catch (e) {
  console.error(e);
  exitCode = 1;
} finally {
  for (const c of cleanups) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
