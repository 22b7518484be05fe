/**
 * The device end to end, as processes: `rc-device run --config FILE` as a
 * child process, a private pcscd + vpcd with virtual cards (test/support/rig/pcscd.ts),
 * a turnstile controller simulator as a process on a socat pty, and a
 * sync-server with its embedded broker. Then faults while running: the
 * controller killed mid-command, the pty removed and recreated, pcscd
 * restarted, the broker restarted — the device survives, reports it in
 * status, recovers, and loses no tap.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReply } from '../../device/runtime/status.js';
import { PcscdRig, type VpcdSlot } from '../support/rig/pcscd.js';
import { createPtyPair, type PtyPair } from '../support/rig/pty.js';
import { VcardHost } from '../support/rig/vcards.js';
import {
  FAST_TIMING,
  PAN,
  mirSpec,
  seedRegistry,
  startDeviceProc,
  startServerRig,
  startSim,
  until,
  type DeviceProc,
  type ServerRig,
  type SimProc,
} from './runtime-rig.js';

const ALL_DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

let pcscd: PcscdRig; // the turnstile's readers (one vpcd entry per pcscd: two slots)
let busPcscd: PcscdRig;
let host: VcardHost;
let pty: PtyPair;
let sim: SimProc | null = null;
let srv: ServerRig;
let gate: DeviceProc;
let bus: DeviceProc;
let entry: VpcdSlot;
let exit: VpcdSlot;
let busSlot: VpcdSlot;
const dirs: string[] = [];
let busDir = '';

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Put a card on a vpcd slot, wait for the device's decision, take the card away and wait until pcscd saw it go. */
async function tap(dev: DeviceProc, slot: VpcdSlot, spec: ReturnType<typeof mirSpec>): Promise<NonNullable<StatusReply['lastTap']>> {
  const before = (await dev.status()).taps;
  await host.insert(slot.port, spec);
  const s = await dev.waitStatus((x) => x.taps > before && x.lastTap?.reader === slot.readerName, `a tap on ${slot.readerName}`);
  await host.remove(slot.port);
  await dev.waitStatus((x) => x.readers.find((r) => r.name === slot.readerName)?.cardPresent === false, 'card removed');
  return s.lastTap!;
}

const periph = (s: StatusReply) => s.peripherals[0]!;

describe('rc-device run, as processes: pcscd + virtual cards, pty turnstile controller, sync-server', () => {
  beforeAll(async () => {
    [pcscd, busPcscd] = await Promise.all([PcscdRig.create(), PcscdRig.create({ friendlyName: 'RC Bus PCD' })]);
    [entry, exit, busSlot] = [pcscd.slots[0]!, pcscd.slots[1]!, busPcscd.slots[0]!];
    host = await VcardHost.start();
    pty = await createPtyPair();
    sim = await startSim(pty.b);
    srv = await startServerRig();
    await seedRegistry(srv);
    const sync = { brokerUrl: srv.url, serverPublicKey: srv.server.publicKeyPem };
    const env = pcscd.clientEnv();
    delete env.RC_TOKEN_KEY;
    const busEnv = busPcscd.clientEnv(env);
    [gate, bus] = await Promise.all([
      startDeviceProc(
        {
          schema: 1,
          device: { id: 'gate-e2e', kind: 'turnstile', schoolId: '7' },
          school: { schedules: { student: [{ days: ALL_DAYS, from: '00:00', to: '24:00' }] }, antiPassback: 'hard' },
          readers: [
            { name: entry.readerName, direction: 'entry' },
            { name: exit.readerName, direction: 'exit' },
          ],
          peripherals: [{ kind: 'turnstile', port: pty.a, options: { name: 'gate', timing: FAST_TIMING } }],
          sync,
        },
        tmp('rc-rt-e2e-gate-'),
        env,
      ),
      startDeviceProc(
        {
          schema: 1,
          device: { id: 'bus-e2e', kind: 'bus', route: '7', vehicle: 'A1' },
          tariff: { routes: { '7': { fullFareKopecks: 3500 } }, benefits: { pensioner: { kind: 'free' } } },
          readers: [{ name: busSlot.readerName }],
          sync,
        },
        (busDir = tmp('rc-rt-e2e-bus-')),
        busEnv,
      ),
    ]);
    await gate.waitStatus(
      (s) =>
        s.sync.connected &&
        s.lists.some((l) => l.scope === 'school:7') &&
        s.readers.filter((r) => r.state === 'idle').length === 2 &&
        periph(s).health.status === 'ok',
      'gate ready',
    );
    await bus.waitStatus(
      (s) =>
        s.sync.connected &&
        s.lists.some((l) => l.scope === 'transit') &&
        s.lists.some((l) => l.scope === 'stoplist') &&
        s.readers.filter((r) => r.state === 'idle').length === 1,
      'bus ready',
    );
  }, 120_000);

  afterAll(async () => {
    if (process.env.RC_E2E_DEBUG) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(tmpdir(), 'rc-e2e-gate.log'), gate?.logs.join('\n') ?? '');
      writeFileSync(join(tmpdir(), 'rc-e2e-bus.log'), bus?.logs.join('\n') ?? '');
      writeFileSync(join(tmpdir(), 'rc-e2e-sim.log'), JSON.stringify(sim?.lines ?? []));
    }
    await gate?.kill().catch(() => undefined);
    await bus?.kill().catch(() => undefined);
    await sim?.kill().catch(() => undefined);
    await host?.close().catch(() => undefined);
    await pcscd?.dispose().catch(() => undefined);
    await busPcscd?.dispose().catch(() => undefined);
    await pty?.close().catch(() => undefined);
    await srv?.close().catch(() => undefined);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 60_000);

  it("a student's card opens the gate: the controller receives OPEN and reports passage, journaled as 'passed'", async () => {
    const t = await tap(gate, entry, mirSpec(PAN.student));
    expect(t).toMatchObject({ result: 'allow', reason: 'ok', gate: 'open-entry', maskedPan: '220070******0041' });
    await sim!.waitFor((m) => m.type === 'command' && m.command?.type === 'open' && m.command.direction === 'entry', 'OPEN entry');
    await sim!.waitFor((m) => m.type === 'event' && m.event?.type === 'passed' && m.acked === true, 'PASSED acknowledged');
    const s = await gate.waitStatus((x) => x.journal.lastSeq >= t.seq + 1, 'passage journaled');
    expect(s.journal.lastSeq).toBe(t.seq + 1);
    await until(() => srv.journal('gate-e2e').some((e) => e.reason === 'passed'), 10_000, "the 'passed' event on the server");
  });

  it('an unknown card does not open the gate; the exit reader opens for exit', async () => {
    const opens = sim!.opens().length;
    const u = await tap(gate, entry, mirSpec(PAN.unknown));
    expect(u).toMatchObject({ result: 'deny', reason: 'not-enrolled', gate: null });
    expect(sim!.opens().length).toBe(opens);
    const x = await tap(gate, exit, mirSpec(PAN.student));
    expect(x).toMatchObject({ result: 'allow', gate: 'open-exit' });
    await sim!.waitFor((m) => m.type === 'command' && m.command?.type === 'open' && m.command.direction === 'exit', 'OPEN exit');
    // one serial line, commands in order: an OPEN for the denied card would have come before this one
    expect(sim!.opens().length).toBe(opens + 1);
  });

  it('a bus config applies benefits and full fares, refuses a stop-listed card, and the taps reach the server', async () => {
    expect(await tap(bus, busSlot, mirSpec(PAN.pensioner))).toMatchObject({ result: 'allow', reason: 'benefit', fareKopecks: 0, benefit: 'pensioner' });
    expect(await tap(bus, busSlot, mirSpec(PAN.unknown))).toMatchObject({ result: 'allow', reason: 'full-fare', fareKopecks: 3500 });
    expect(await tap(bus, busSlot, mirSpec(PAN.stopped))).toMatchObject({ result: 'deny', reason: 'stop-list' });
    expect(await tap(bus, busSlot, { kind: 'emv', scheme: 'visa', pan: '4111111111111111', expiry: '2029-01', psn: '00' } as never)).toMatchObject({
      result: 'deny',
      reason: 'card.not-mir',
    });
    await until(() => srv.journal('bus-e2e').length === 4, 10_000, 'bus journal on the server');
    expect(srv.journal('bus-e2e').map((e) => [e.seq, e.result, e.reason, e.fare])).toEqual([
      [1, 'allow', 'benefit', 0],
      [2, 'allow', 'full-fare', 3500],
      [3, 'deny', 'stop-list', 0],
      [4, 'deny', 'card.not-mir', 0],
    ]);
    await bus.waitStatus((s) => s.journal.backlog === 0, 'bus backlog acknowledged');
  });

  it('controller killed mid-command: the tap stays journaled, status reports the controller down, it recovers when the controller is back', async () => {
    await sim!.stop();
    sim = await startSim(pty.b, ['--pass-delay-ms', '2000']);
    await gate.waitStatus((s) => periph(s).health.status === 'ok', 'controller ok');
    const before = sim.opens().length;
    await host.insert(entry.port, mirSpec(PAN.student));
    await sim.waitFor((m) => m.type === 'command' && m.command?.type === 'open', 'OPEN before the kill');
    expect(sim.opens().length).toBe(before + 1);
    await sim.kill(); // mid-command: it acknowledged OPEN but never reports the passage
    const down = await gate.waitStatus((s) => periph(s).health.status !== 'ok', 'controller reported not ok');
    expect(down.lastTap).toMatchObject({ result: 'allow', gate: 'open-entry' });
    await host.remove(entry.port);
    // the open ends as not-passed, journaled
    await gate.waitStatus((s) => s.journal.lastSeq >= down.lastTap!.seq + 1, 'not-passed journaled', 15_000);
    sim = await startSim(pty.b);
    await gate.waitStatus((s) => periph(s).health.status === 'ok', 'controller ok again', 15_000);
    await gate.waitStatus((s) => s.readers.find((r) => r.name === entry.readerName)?.cardPresent === false, 'card removed');
    const t = await tap(gate, exit, mirSpec(PAN.student));
    expect(t).toMatchObject({ result: 'allow', gate: 'open-exit' });
    await sim.waitFor((m) => m.type === 'event' && m.event?.type === 'passed', 'passage after recovery');
  });

  it('pty removed and recreated: taps are decided and journaled meanwhile, status shows the port closed, the gate works again after', async () => {
    await sim!.kill();
    await pty.remove();
    const gone = await gate.waitStatus((s) => !periph(s).health.portOpen, 'port closed in status');
    expect(periph(gone).health.status).not.toBe('ok');
    const t = await tap(gate, entry, mirSpec(PAN.student));
    expect(t).toMatchObject({ result: 'allow', reason: 'ok' }); // decided and journaled without a controller
    await pty.recreate();
    sim = await startSim(pty.b);
    await gate.waitStatus((s) => periph(s).health.portOpen && periph(s).health.status === 'ok', 'port back', 15_000);
    expect((await gate.status()).peripherals[0]!.health.counters.reconnects).toBeGreaterThan(0);
    const x = await tap(gate, exit, mirSpec(PAN.student));
    expect(x).toMatchObject({ result: 'allow', gate: 'open-exit' });
    await sim.waitFor((m) => m.type === 'command' && m.command?.type === 'open' && m.command.direction === 'exit', 'OPEN after the pty came back');
  });

  it('pcscd restarted: status reports the service down, the readers come back and the next card is read', async () => {
    await pcscd.stop();
    await gate.waitStatus((s) => s.pcsc === 'down', 'PC/SC down in status');
    await pcscd.start();
    await gate.waitStatus((s) => s.pcsc === 'up' && s.readers.every((r) => r.state === 'idle'), 'PC/SC back', 20_000);
    const t = await tap(gate, entry, mirSpec(PAN.student));
    expect(t).toMatchObject({ result: 'allow', reason: 'ok' });
  });

  it('broker restarted: taps go on offline, status shows the broker lost, the journal catches up after — no tap lost', async () => {
    await srv.stopBroker();
    await gate.waitStatus((s) => !s.sync.connected, 'broker lost in status');
    const t = await tap(gate, exit, mirSpec(PAN.student));
    expect(t).toMatchObject({ result: 'allow' });
    expect((await gate.status()).journal.backlog).toBeGreaterThan(0);
    await srv.startBroker();
    await gate.waitStatus((s) => s.sync.connected && s.journal.backlog === 0, 'reconnected and journal acknowledged', 30_000);
    for (const [dev, id] of [
      [gate, 'gate-e2e'],
      [bus, 'bus-e2e'],
    ] as const) {
      const last = (await dev.status()).journal.lastSeq;
      await until(() => srv.journal(id).length === last, 10_000, `${id}: every tap on the server`);
      expect(srv.journal(id).map((e) => e.seq)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    }
  });

  it('SIGTERM: the tap in progress is finished and journaled, the gate closes, the device stops cleanly (exit 0, socket gone) and never logged a PAN', async () => {
    const closesBefore = sim!.lines.filter((m) => m.type === 'command' && m.command?.type === 'close').length;
    expect(await gate.terminate()).toBe(0);
    await sim!.waitFor(
      (m) =>
        m.type === 'command' &&
        m.command?.type === 'close' &&
        sim!.lines.filter((x) => x.type === 'command' && x.command?.type === 'close').length > closesBefore,
      'CLOSE on SIGTERM',
    );
    // the bus gets SIGTERM in the middle of a tap (a card that stops answering): the tap is finished and journaled first.
    // (vpcd waits for the silent card forever, and pcscd with it: the PC/SC binding's clean-up at process exit
    // blocks until the card leaves the field — the passenger takes it away; the journal and the store are closed before.)
    await host.insert(busSlot.port, { ...mirSpec(PAN.pensioner), faults: { silentAt: 3 } });
    await bus.waitStatus((s) => s.readers[0]?.state === 'reading', 'a tap in progress', 10_000);
    bus.signal('SIGTERM');
    await until(() => bus.logs.some((l) => l.includes('stopped; exiting')), 10_000, 'the bus stopped');
    await host.remove(busSlot.port);
    expect(await bus.exited()).toBe(0);
    const db = new Database(join(busDir, 'device.sqlite'), { readonly: true });
    try {
      expect(db.prepare('SELECT result, reason FROM journal ORDER BY seq DESC LIMIT 1').get()).toEqual({ result: 'deny', reason: 'card.timeout' });
    } finally {
      db.close();
    }
    for (const dev of [gate, bus]) {
      expect(await dev.terminate()).toBe(0);
      await expect(dev.status()).rejects.toMatchObject({ code: 'runtime.not-running' });
      const text = dev.logs.join('\n');
      for (const p of [...Object.values(PAN), '4111111111111111']) expect(text).not.toContain(p);
      expect(text).toContain('tap decided');
    }
  });
});
