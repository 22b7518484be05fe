import { describe, expect, it } from 'vitest';
import { parsePeripheralConfig } from '../../device/io/config.js';
import { ConsolePeripheral, formatDisplayLine } from '../../device/io/console.js';
import { PROTOCOLS, createPeripheral } from '../../device/io/factory.js';
import { isDisplay, isTurnstile } from '../../device/io/types.js';
import { createDevicePeripherals } from '../../device/runtime/device.js';
import { expectRcError } from '../support/errors.js';
import { quietLogger } from '../support/log.js';

const log = quietLogger();

function printed(): { lines: string[]; out: { write(l: string): void } } {
  const lines: string[] = [];
  return { lines, out: { write: (l) => lines.push(l) } };
}

describe('peripheral config and factory', () => {
  it('fills defaults: protocol rcp1, 19200 baud, default timing', () => {
    const c = parsePeripheralConfig({ kind: 'turnstile', port: '/dev/ttyUSB0' });
    expect(c).toMatchObject({ kind: 'turnstile', protocol: 'rcp1', port: '/dev/ttyUSB0', baudRate: 19200 });
  });

  it('refuses a config without a port with config.invalid naming the field', () => {
    const e = expectRcError(() => createPeripheral({ kind: 'display', protocol: 'rcp1' }, { log }));
    expect(e.code).toBe('config.invalid');
    expect(e.context?.path).toBe('port');
  });

  it('refuses an unknown protocol with config.invalid, listing the known ones', () => {
    const e = expectRcError(() => createPeripheral({ kind: 'turnstile', protocol: 'acme9', port: '/dev/ttyS0' }, { log }));
    expect(e.code).toBe('config.invalid');
    expect(e.message).toContain('rcp1');
    expect(e.context?.path).toBe('protocol');
  });

  it('refuses unknown fields and a backoff ceiling below its floor', () => {
    expect(expectRcError(() => parsePeripheralConfig({ kind: 'turnstile', port: '/x', colour: 'red' })).code).toBe('config.invalid');
    const e = expectRcError(() => parsePeripheralConfig({ kind: 'turnstile', port: '/x', timing: { reconnectMinMs: 500, reconnectMaxMs: 100 } }));
    expect(e.context?.path).toBe('timing.reconnectMaxMs');
  });

  it('registers every protocol under its own name', () => {
    expect(Object.keys(PROTOCOLS)).toContain('rcp1');
    for (const [key, p] of Object.entries(PROTOCOLS)) expect(p.name).toBe(key);
  });

  it('builds a set: a console counts as turnstile and display; a bad entry is reported with its index', () => {
    const all = createDevicePeripherals(
      [
        { kind: 'turnstile', port: '/dev/rc-none-1' },
        { kind: 'display', port: '/dev/rc-none-2' },
        { kind: 'console', options: { name: 'demo' } },
      ],
      { log, consoleOut: printed().out },
    ).map((p) => p.peripheral);
    const set = { all, turnstiles: all.filter(isTurnstile), displays: all.filter(isDisplay) };
    expect(set.all).toHaveLength(3);
    expect(set.turnstiles.map((p) => p.kind)).toEqual(['turnstile', 'console']);
    expect(set.displays.map((p) => p.kind)).toEqual(['display', 'console']);
    // nothing is opened before start(): health says down, port closed
    expect(set.all[0]?.health()).toMatchObject({ status: 'down', portOpen: false });
    const e = expectRcError(() => createDevicePeripherals([{ kind: 'console' }, { kind: 'turnstile' }], { log }));
    expect(e.context?.path).toBe('peripherals.1.port');
  });
});

describe('console peripheral (the demo)', () => {
  it('prints a decision as a person reads it: light, Russian / English, beep', async () => {
    const { lines, out } = printed();
    const p = createPeripheral({ kind: 'console' }, { log, consoleOut: out });
    if (!isDisplay(p)) throw new Error('not a display');
    expect(await p.show({ text: 'Проезд льготный — 0 ₽\nBenefit fare — 0 RUB', light: 'green', beep: 'none' })).toBe(true);
    expect(lines).toEqual(['🟢 Проезд льготный — 0 ₽ / Benefit fare — 0 RUB']);
    expect(formatDisplayLine({ text: 'Карта в стоп-листе', light: 'red', beep: 'error' })).toBe('🔴 Карта в стоп-листе 🔔🔔🔔');
  });

  it('opens the gate, the pretend person passes, the gate closes', async () => {
    const { lines, out } = printed();
    const p = createPeripheral({ kind: 'console', passAfterMs: 5 }, { log, consoleOut: out });
    if (!isTurnstile(p)) throw new Error('not a turnstile');
    const states: string[] = [];
    p.onEvent((e) => states.push(e.type === 'state' ? e.state : e.type));
    expect(await p.openForEntry()).toBe('passed');
    expect(lines).toEqual(['🚪 Турникет открыт на вход / Gate open for entry', '🚶 Проход состоялся / Passed']);
    expect(states).toEqual(['open-entry', 'passed', 'closed']);
    expect(p.health().status).toBe('ok');
  });

  it('nobody comes: the open times out as not-passed', async () => {
    const { lines, out } = printed();
    const p = new ConsolePeripheral({ passAfterMs: null, passWindowMs: 20, out });
    expect(await p.openForExit()).toBe('not-passed');
    expect(lines.at(-1)).toBe('⌛ Проход не состоялся / Not passed');
  });

  it('stop() closes an open gate but leaves free passage alone', async () => {
    const a = printed();
    const p = new ConsolePeripheral({ passAfterMs: null, passWindowMs: 10_000, out: a.out });
    const pending = p.openForEntry();
    await p.stop();
    expect(await pending).toBe('not-passed');
    expect(p.state).toBe('closed');
    const b = printed();
    const q = new ConsolePeripheral({ out: b.out });
    await q.freePassage(true);
    await q.stop();
    expect(q.state).toBe('free-passage');
    expect(b.lines).toEqual(['🚪 Свободный проход / Free passage']);
  });
});
