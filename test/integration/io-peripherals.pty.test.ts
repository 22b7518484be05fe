import { afterAll, describe, expect, it } from 'vitest';
import { createPeripheral } from '../../device/io/factory.js';
import { isTurnstile, type Turnstile } from '../../device/io/types.js';
import { quietLogger } from '../support/log.js';
import { createPtyPair, type PtyPair } from '../support/rig/pty.js';
import { SerialEndpoint } from '../support/sim/endpoint.js';
import { startSimProcess, type SimProcess } from '../support/sim/process.js';
import { ioPeripheralsSuite, type IoRig } from '../suites/io-peripherals.suite.js';
import { waitFor } from '../support/wait.js';

const log = quietLogger();

/** A real pty pair from socat: the driver on one end, the simulator (real serialport) on the other. */
const ptyRig: IoRig = {
  name: 'socat pty pair',
  timing: { ackTimeoutMs: 150 },
  async line() {
    const pty = await createPtyPair();
    const endpoint = new SerialEndpoint(pty.b, 115200, 20);
    return {
      port: pty.a,
      endpoint,
      simReady: () => endpoint.opened(),
      unplug: () => pty.remove(),
      replug: () => pty.recreate(),
      close: async () => {
        await endpoint.close();
        await pty.close();
      },
    };
  },
};

describe(`peripherals over rcp1 (${ptyRig.name})`, () => ioPeripheralsSuite(ptyRig));

describe('a pty removed while nobody holds its other end', () => {
  let pty: PtyPair | undefined;
  let gate: Turnstile | undefined;
  afterAll(async () => {
    await gate?.stop();
    await pty?.close();
  });

  // Seen here: a pty slave opened with nothing on the other side and no traffic got no EIO when
  // socat went away. The driver notices by its read error or, failing that, by watching the path.
  it('the driver still notices, reports down, and re-opens the recreated pty', async () => {
    pty = await createPtyPair();
    const p = createPeripheral(
      { kind: 'turnstile', port: pty.a, timing: { ackTimeoutMs: 50, retries: 0, reconnectMinMs: 20, reconnectMaxMs: 100, portCheckMs: 50, keepaliveMs: 0 } },
      { log },
    );
    if (!isTurnstile(p)) throw new Error('not a turnstile');
    gate = p;
    await gate.start();
    await waitFor(() => gate?.health().portOpen === true, { timeoutMs: 5000, what: 'port open' });
    await pty.remove();
    await waitFor(() => gate?.health().portOpen === false, { timeoutMs: 2000, what: 'port noticed gone' });
    expect(gate.health()).toMatchObject({ status: 'down', lastError: { code: 'io.port-unavailable' } });
    await pty.recreate();
    await waitFor(() => gate?.health().portOpen === true, { timeoutMs: 5000, what: 'port re-opened' });
    expect(gate.health().counters.reconnects).toBe(1);
  });
});

describe('turnstile simulator as a separate process (as the end-to-end tests run it)', () => {
  let pty: PtyPair | undefined;
  let sim: SimProcess | undefined;
  let gate: Turnstile | undefined;

  afterAll(async () => {
    await gate?.stop();
    await sim?.stop();
    await pty?.close();
  });

  it('receives the open command and reports passage; killed mid-command and restarted, the driver recovers', async () => {
    pty = await createPtyPair();
    sim = await startSimProcess('turnstile', pty.b, { baudRate: 115200, passDelayMs: 30 });
    const p = createPeripheral(
      {
        kind: 'turnstile',
        port: pty.a,
        baudRate: 115200,
        timing: { ackTimeoutMs: 150, retries: 2, passWindowMs: 500, reconnectMinMs: 20, reconnectMaxMs: 200, portCheckMs: 50, keepaliveMs: 0 },
      },
      { log },
    );
    if (!isTurnstile(p)) throw new Error('not a turnstile');
    gate = p;
    await gate.start();
    await waitFor(() => gate?.health().status === 'ok', { timeoutMs: 5000, what: 'gate ok' });
    // the simulator announces its start (BOOT) and retransmits it until our driver acknowledges
    await sim.waitFor((m) => m.type === 'event' && m.event?.type === 'boot' && m.acked === true, 'acknowledged BOOT');

    expect(await gate.openForEntry()).toBe('passed');
    await sim.waitFor((m) => m.type === 'event' && m.event?.type === 'passed' && m.acked === true, 'acknowledged PASSED');
    expect(sim.commands('open')).toEqual([{ type: 'open', direction: 'entry', windowMs: 500 }]);

    // steer it over stdin: it stops answering
    sim.setBehaviour({ mode: 'silent' });
    await sim.waitFor((m) => m.type === 'behaviour', 'behaviour change');
    expect(await gate.close()).toBe(false);
    expect(gate.health().lastError?.code).toBe('io.no-ack');

    // killed in the middle of a command: the open resolves not-passed, nothing hangs
    sim.setBehaviour({ mode: 'normal' });
    await sim.waitFor((m) => m.type === 'behaviour' && m.behaviour?.mode === 'normal', 'behaviour normal');
    sim.setBehaviour({ mode: 'never-passes' });
    await sim.waitFor((m) => m.type === 'behaviour' && m.behaviour?.mode === 'never-passes', 'behaviour never-passes');
    const pending = gate.openForEntry();
    await sim.waitFor(() => sim!.commands('open').length === 2, 'second OPEN');
    sim.kill();
    expect(await pending).toBe('not-passed');

    sim = await startSimProcess('turnstile', pty.b, { baudRate: 115200, passDelayMs: 30 });
    await sim.waitFor((m) => m.type === 'event' && m.event?.type === 'boot' && m.acked === true, 'acknowledged BOOT after restart');
    expect(gate.state).toBe('unknown'); // the driver learnt the controller restarted
    expect(await gate.openForEntry()).toBe('passed');
    expect(gate.health().status).toBe('ok');
  });
});
