import { afterEach, expect, it } from 'vitest';
import type { Timing } from '../../device/io/config.js';
import { createPeripheral } from '../../device/io/factory.js';
import type { SerialBinding } from '../../device/io/link.js';
import { isDisplay, isTurnstile, type Display, type HealthStatus, type Turnstile } from '../../device/io/types.js';
import { quietLogger } from '../support/log.js';
import { DisplaySim } from '../support/sim/display-sim.js';
import type { SimEndpoint } from '../support/sim/endpoint.js';
import { garbageBytes } from '../support/sim/rcp1-peer.js';
import { Cmd, encodeFrame } from '../../device/io/protocols/rcp1.js';
import { TurnstileSim } from '../support/sim/turnstile-sim.js';
import { waitFor } from '../support/wait.js';

/** One line between a driver and a simulator: serialport's mock binding, or a socat pty pair. */
export interface IoLine {
  /** The driver's port path, and the binding to open it with (undefined: the real one). */
  port: string;
  binding?: SerialBinding;
  /** The simulator's end. */
  endpoint: SimEndpoint;
  /** Resolves once the simulator's end is open (after replug too). */
  simReady(): Promise<void>;
  /** The port disappears (USB adapter pulled, pty removed). */
  unplug(): Promise<void>;
  /** The port comes back at the same path. */
  replug(): Promise<void>;
  close(): Promise<void>;
}

export interface IoRig {
  name: string;
  line(): Promise<IoLine>;
  /** Protocol timing for this rig: short, but with room for a loaded machine. */
  timing: Partial<Timing>;
}

const log = quietLogger();

export function ioPeripheralsSuite(rig: IoRig): void {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const timing = (extra: Partial<Timing> = {}): Partial<Timing> => ({
    retries: 2,
    passWindowMs: 300,
    passGuardMs: 300,
    interByteTimeoutMs: 20,
    reconnectMinMs: 20,
    reconnectMaxMs: 160,
    portCheckMs: 25,
    keepaliveMs: 0,
    downAfterFailures: 3,
    ...rig.timing,
    ...extra,
  });

  async function turnstileRig(opts: { timing?: Partial<Timing>; start?: boolean; passDelayMs?: number } = {}) {
    const line = await rig.line();
    cleanups.push(() => line.close());
    const sim = new TurnstileSim(line.endpoint, { passDelayMs: opts.passDelayMs ?? 30, eventAckTimeoutMs: 100 });
    cleanups.push(() => sim.close());
    const p = createPeripheral(
      { kind: 'turnstile', protocol: 'rcp1', port: line.port, baudRate: 115200, name: 'gate', timing: timing(opts.timing) },
      { log, ...(line.binding ? { binding: line.binding } : {}) },
    );
    if (!isTurnstile(p)) throw new Error('factory did not build a turnstile');
    const t: Turnstile = p;
    cleanups.push(() => t.stop());
    const statuses: HealthStatus[] = [];
    t.onHealth((h) => statuses.push(h.status));
    if (opts.start !== false) {
      await line.simReady();
      await t.start();
      await waitFor(() => t.health().status === 'ok' && sim.peer.executed('ping').length > 0, { timeoutMs: 3000, what: 'turnstile ok' });
    }
    return { line, sim, t, statuses };
  }

  async function displayRig() {
    const line = await rig.line();
    cleanups.push(() => line.close());
    const sim = new DisplaySim(line.endpoint);
    cleanups.push(() => sim.close());
    const p = createPeripheral({ kind: 'display', port: line.port, timing: timing() }, { log, ...(line.binding ? { binding: line.binding } : {}) });
    if (!isDisplay(p)) throw new Error('factory did not build a display');
    const d: Display = p;
    cleanups.push(() => d.stop());
    await line.simReady();
    await d.start();
    await waitFor(() => d.health().status === 'ok' && sim.peer.executed('ping').length > 0, { timeoutMs: 3000, what: 'display ok' });
    return { line, sim, d };
  }

  it('open for entry: the controller opens, reports the person through, and the driver resolves "passed"', async () => {
    const { sim, t } = await turnstileRig();
    const events: string[] = [];
    t.onEvent((e) => events.push(e.type === 'state' ? `state:${e.state}` : e.type));
    expect(await t.openForEntry()).toBe('passed');
    expect(sim.peer.executed('open')).toEqual([{ type: 'open', direction: 'entry', windowMs: 300 }]);
    expect(events).toEqual(['state:open-entry', 'passed', 'state:closed']);
    expect(t.state).toBe('closed');
    expect(t.health().status).toBe('ok');
  });

  it('open for exit when nobody walks through: the controller reports open timeout and the driver resolves "not-passed"', async () => {
    const { sim, t } = await turnstileRig();
    sim.setBehaviour({ mode: 'never-passes' });
    const events: string[] = [];
    t.onEvent((e) => events.push(e.type));
    const t0 = Date.now();
    expect(await t.openForExit()).toBe('not-passed');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250); // the window it sent (300 ms), not an early give-up
    expect(events).toContain('open-timeout');
    expect(t.health().status).toBe('ok'); // nobody passing is not a fault
  });

  it('the display shows Cyrillic text with its light and beep', async () => {
    const { sim, d } = await displayRig();
    const text = 'Проезд льготный — 0 ₽\nBenefit fare — 0 RUB';
    expect(await d.show({ text, light: 'green', beep: 'short' })).toBe(true);
    expect(sim.current).toEqual({ text, light: 'green', beep: 'short' });
    expect(await d.show({ text: 'Карта в стоп-листе', light: 'red', beep: 'error' })).toBe(true);
    expect(sim.current).toEqual({ text: 'Карта в стоп-листе', light: 'red', beep: 'error' });
  });

  it('a controller that stops answering: retries, then io.no-ack, degraded then down; the next command works once it answers', async () => {
    const { sim, t, statuses } = await turnstileRig();
    sim.setBehaviour({ mode: 'silent' });
    const before = t.health().counters;
    expect(await t.close()).toBe(false);
    let h = t.health();
    expect(h.status).toBe('degraded');
    expect(h.lastError?.code).toBe('io.no-ack');
    expect(h.counters.retries - before.retries).toBe(2);
    // an open never hangs the tap loop: it resolves not-passed after the retries
    expect(await t.openForEntry()).toBe('not-passed');
    expect(await t.freePassage(true)).toBe(false);
    h = t.health();
    expect(h.status).toBe('down');
    expect(h.portOpen).toBe(true);
    sim.setBehaviour({ mode: 'normal' });
    expect(await t.openForEntry()).toBe('passed');
    expect(t.health().status).toBe('ok');
    expect(statuses.slice(-3)).toEqual(['degraded', 'down', 'ok']);
  });

  it('garbage bytes on the line: the driver resynchronises, counts them, and every command still works', async () => {
    const { line, sim, t } = await turnstileRig();
    sim.setBehaviour({ mode: 'noisy' }); // garbage before every ACK and event
    for (let i = 0; i < 5; i++) {
      line.endpoint.write(garbageBytes(64)); // and unsolicited noise
      expect(await t.openForEntry()).toBe('passed');
    }
    expect(t.health().counters.badFrames).toBeGreaterThan(0);
    expect(t.health().status).toBe('ok');
  });

  it('a controller answering only garbage: io.no-ack without a crash, then recovery', async () => {
    const { sim, t } = await turnstileRig();
    sim.setBehaviour({ mode: 'garbage' });
    expect(await t.close()).toBe(false);
    expect(t.health().lastError?.code).toBe('io.no-ack');
    sim.setBehaviour({ mode: 'normal' });
    expect(await t.close()).toBe(true);
    expect(t.state).toBe('closed');
  });

  it('NAK (busy) is retried with the same sequence number and the command runs once', async () => {
    const { sim, t } = await turnstileRig();
    sim.setBehaviour({ mode: 'nak-first', n: 2 });
    const retries = t.health().counters.retries;
    expect(await t.openForEntry()).toBe('passed');
    // two NAKs, two retries (one more if a loaded machine delays an ACK past the timeout)
    expect(t.health().counters.retries - retries).toBeGreaterThanOrEqual(2);
    expect(sim.peer.executed('open')).toHaveLength(1);
  });

  it('a retry after a lost ACK does not open the gate twice (the controller recognises the sequence number)', async () => {
    const { sim, t } = await turnstileRig();
    sim.setBehaviour({ mode: 'ack-lost', n: 1 });
    expect(await t.openForEntry()).toBe('passed');
    const opens = sim.peer.received.filter((r) => r.command.type === 'open');
    expect(opens.length).toBeGreaterThanOrEqual(2);
    expect(new Set(opens.map((r) => r.seq)).size).toBe(1);
    expect(opens.filter((r) => r.executed)).toHaveLength(1);
  });

  it('NAK on every attempt fails with io.nack', async () => {
    const { sim, t } = await turnstileRig();
    sim.setBehaviour({ mode: 'nak-first', n: 10 });
    expect(await t.openForEntry()).toBe('not-passed');
    expect(t.health().lastError?.code).toBe('io.nack');
    expect(t.health().status).toBe('degraded');
  });

  it('a tamper event reaches the driver once and is acknowledged', async () => {
    const { sim, t } = await turnstileRig();
    const tampers: number[] = [];
    t.onEvent((e) => {
      if (e.type === 'tamper') tampers.push(e.detail);
    });
    expect(await sim.tamper(3)).toBe(true);
    await waitFor(() => tampers.length > 0, { timeoutMs: 1000, what: 'tamper event' });
    expect(tampers).toEqual([3]);
  });

  it('an event sent twice because its ACK was lost is delivered once; after a BOOT the numbering starts afresh', async () => {
    const { line, t } = await turnstileRig();
    expect(await t.close()).toBe(true);
    const seen: string[] = [];
    t.onEvent((e) => seen.push(e.type === 'tamper' ? `tamper:${e.detail}` : e.type === 'state' ? `state:${e.state}` : e.type));
    const tamper = (seq: number, detail: number) => encodeFrame({ seq, cmd: Cmd.EVT_TAMPER, payload: Uint8Array.of(detail) });
    line.endpoint.write(tamper(200, 5));
    line.endpoint.write(tamper(200, 5)); // the retransmission
    line.endpoint.write(encodeFrame({ seq: 1, cmd: Cmd.EVT_BOOT, payload: new Uint8Array(0) }));
    line.endpoint.write(tamper(200, 6)); // a restarted controller reusing the number
    await waitFor(() => seen.includes('tamper:6'), { timeoutMs: 2000, what: 'second tamper' });
    expect(seen).toEqual(['tamper:5', 'state:unknown', 'tamper:6']);
  });

  it('the port disappears and comes back: down, reconnect by itself with backoff (no spin), ok, and the gate works again', async () => {
    const { line, sim, t, statuses } = await turnstileRig();
    await line.unplug();
    await waitFor(() => t.health().status === 'down', { timeoutMs: 3000, what: 'status down' });
    expect(t.health().portOpen).toBe(false);
    expect(t.health().lastError?.code).toBe('io.port-unavailable');
    // while it is gone, a tap gets a prompt answer: no waiting for ACKs, no retries
    const retriesBefore = t.health().counters.retries;
    const t0 = Date.now();
    expect(await t.openForEntry()).toBe('not-passed');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(t.health().counters.retries).toBe(retriesBefore);
    const attempts0 = t.health().counters.openAttempts;
    // not a wait but an observation window: the rate of reconnect attempts over 600 ms
    await new Promise((r) => setTimeout(r, 600));
    const attempts = t.health().counters.openAttempts - attempts0;
    // backoff 20 → 160 ms: a handful of attempts in 600 ms, not thousands
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(12);
    await line.replug();
    await line.simReady();
    await waitFor(() => t.health().status === 'ok', { timeoutMs: 3000, what: 'status ok after replug' });
    expect(t.health().counters.reconnects).toBe(1);
    expect(await t.openForEntry()).toBe('passed');
    expect(sim.peer.executed('open')).toHaveLength(1);
    // A write caught in flight when the port vanished fails with EIO first and
    // shows 'degraded' for a moment before the port watch reports 'down'; which
    // comes first is a race the machine's load decides. Either way: ok, down, ok.
    expect(statuses.filter((s) => s !== 'degraded')).toEqual(['ok', 'down', 'ok']);
    expect(statuses.indexOf('degraded')).not.toBe(statuses.length - 1);
  });

  it('a port absent at start: start() does not throw, the driver reports down, and comes up when the port appears', async () => {
    const { line, t } = await turnstileRig({ start: false });
    await line.unplug();
    await t.start();
    await waitFor(() => t.health().status === 'down' && t.health().lastError !== undefined, { timeoutMs: 3000, what: 'the driver to report the absent port' });
    expect(t.health().status).toBe('down');
    expect(t.health().lastError?.code).toBe('io.port-unavailable');
    await line.replug();
    await line.simReady();
    await waitFor(() => t.health().status === 'ok', { timeoutMs: 3000, what: 'status ok' });
    expect(await t.openForEntry()).toBe('passed');
  });

  it('stop() closes the gate, but leaves it open in free-passage mode', async () => {
    const a = await turnstileRig();
    await a.t.stop();
    expect(a.sim.peer.executed().at(-1)).toEqual({ type: 'close' });
    const b = await turnstileRig();
    expect(await b.t.freePassage(true)).toBe(true);
    expect(b.t.state).toBe('free-passage');
    await b.t.stop();
    expect(b.sim.peer.executed().at(-1)).toEqual({ type: 'free-passage', on: true });
  });
}
