import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../device/config/load.js';
import type { Config } from '../../device/config/schema.js';
import type { Direction, DisplayMessage, PassOutcome, PeripheralHealth, Turnstile, TurnstileEvent, TurnstileState, Display } from '../../device/io/types.js';
import { VirtualReaderSource } from '../../device/reader/virtual.js';
import type { Clock } from '../../device/runtime/clock.js';
import type { OutcomeReport } from '../../device/runtime/events.js';
import type { RuntimePeripheral } from '../../device/runtime/peripherals.js';
import { Runtime } from '../../device/runtime/runtime.js';
import type { TapReport } from '../../device/runtime/status.js';
import { Store } from '../../device/store/index.js';
import { createLogger, type Logger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY, deriveToken, type TokenKey } from '../../protocol/token.js';
import type { TokenDeriver } from '../../protocol/token-hsm.js';

/** The token of mirSpec's card (PAN ‖ its expiry) under the development key. */
export const tokenOf = (pan: string, expiry = '2029-06'): string => deriveToken(Buffer.from(pan, 'ascii'), { expiry }, DEV_TOKEN_KEY);

/** Synthetic, Luhn-valid PANs. */
export const PAN = {
  pensioner: '2200700000000017',
  unknown: '2200700000000025',
  stopped: '2200700000000033',
  student: '2200700000000041',
};

export const mirSpec = (pan: string, psn = '01') => ({ kind: 'emv' as const, pan, expiry: '2029-06', psn });

export class TestClock implements Clock {
  bootId = 'unit';
  mono = 5_000_000;
  constructor(public wall: number) {}
  wallMs(): number {
    return this.wall;
  }
  monoMs(): number {
    return this.mono;
  }
  set(iso: string): void {
    const t = Date.parse(iso);
    this.mono += Math.max(0, t - this.wall);
    this.wall = t;
  }
}

export interface LogSink {
  lines: string[];
  log: Logger;
}
export function logSink(): LogSink {
  const lines: string[] = [];
  const log = createLogger({
    level: 'debug',
    destination: new Writable({
      write(c: Buffer, _e, cb) {
        lines.push(c.toString());
        cb();
      },
    }),
  });
  return { lines, log };
}

export interface MockCommand {
  kind: 'show' | 'open-entry' | 'open-exit' | 'close' | 'free-passage';
  msg?: DisplayMessage;
  at: number;
}

/** A turnstile + display that records commands; hooks let a test fail it or look at the store at the moment a command arrives. */
export class MockPeripheral implements Turnstile, Display {
  readonly kind = 'turnstile' as const;
  readonly protocol = 'mock';
  readonly port = 'mock';
  commands: MockCommand[] = [];
  state: TurnstileState = 'closed';
  outcome: PassOutcome = 'passed';
  outcomeDelayMs = 5;
  down = false;
  throwOnShow = false;
  showDelayMs = 0;
  onCommand: ((c: MockCommand) => void) | null = null;
  stopped = false;
  constructor(readonly name = 'mock') {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.state !== 'free-passage') this.state = 'closed';
  }
  health(): PeripheralHealth {
    return {
      status: this.down ? 'down' : 'ok',
      since: new Date(0).toISOString(),
      portOpen: !this.down,
      counters: { commands: this.commands.length, retries: 0, failures: 0, badFrames: 0, reconnects: 0, openAttempts: 0 },
    };
  }
  onHealth(): () => void {
    return () => undefined;
  }
  onEvent(_l: (e: TurnstileEvent) => void): () => void {
    return () => undefined;
  }
  private record(c: MockCommand): void {
    this.commands.push(c);
    this.onCommand?.(c);
  }
  async show(msg: DisplayMessage): Promise<boolean> {
    if (this.throwOnShow) throw new Error('display exploded');
    this.record({ kind: 'show', msg, at: performance.now() });
    if (this.showDelayMs) await new Promise((r) => setTimeout(r, this.showDelayMs));
    return !this.down;
  }
  private async open(d: Direction): Promise<PassOutcome> {
    this.record({ kind: d === 'entry' ? 'open-entry' : 'open-exit', at: performance.now() });
    if (this.down) return 'not-passed';
    this.state = d === 'entry' ? 'open-entry' : 'open-exit';
    await new Promise((r) => setTimeout(r, this.outcomeDelayMs));
    this.state = 'closed';
    return this.outcome;
  }
  openForEntry(): Promise<PassOutcome> {
    return this.open('entry');
  }
  openForExit(): Promise<PassOutcome> {
    return this.open('exit');
  }
  async close(): Promise<boolean> {
    this.record({ kind: 'close', at: performance.now() });
    this.state = 'closed';
    return !this.down;
  }
  async freePassage(on: boolean): Promise<boolean> {
    this.record({ kind: 'free-passage', at: performance.now() });
    this.state = on ? 'free-passage' : 'closed';
    return !this.down;
  }
}

export function busConfig(extra: Record<string, unknown> = {}): Config {
  return loadConfig({
    schema: 1,
    device: { id: 'bus-unit', kind: 'bus', route: '7', vehicle: 'A1' },
    tariff: { routes: { '7': { fullFareKopecks: 3500 } }, benefits: { pensioner: { kind: 'free' } }, repeatWindowSec: 420 },
    ...extra,
  });
}

export function turnstileConfig(extra: Record<string, unknown> = {}, school: Record<string, unknown> = {}): Config {
  return loadConfig({
    schema: 1,
    device: { id: 'gate-unit', kind: 'turnstile', schoolId: '7' },
    school: { schedules: { student: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '07:30', to: '15:00' }] }, ...school },
    readers: [
      { name: 'Entry', direction: 'entry' },
      { name: 'Exit', direction: 'exit' },
    ],
    ...extra,
  });
}

export function seedStore(store: Store): void {
  store.applySnapshot({
    scope: 'transit',
    version: 1,
    entries: [{ token: tokenOf(PAN.pensioner), cardExpiry: '2029-06', benefits: [{ category: 'pensioner', validFrom: '2020-01-01', validTo: '2030-12-31' }] }],
  });
  store.applySnapshot({ scope: 'stoplist', version: 1, entries: [{ token: tokenOf(PAN.stopped), reason: 'lost', since: '2026-01-01' }] });
  store.applySnapshot({
    scope: 'school:7',
    version: 1,
    entries: [
      { token: tokenOf(PAN.student), cardExpiry: '2029-06', role: 'student', grade: 5, mealCategory: null, validFrom: '2026-09-01', validTo: '2027-05-31' },
    ],
  });
}

export interface Rig {
  dir: string;
  store: Store;
  source: VirtualReaderSource;
  runtime: Runtime;
  periph: MockPeripheral;
  clock: TestClock;
  logs: LogSink;
  tap(reader: string, spec: Parameters<VirtualReaderSource['present']>[1]): Promise<TapReport>;
  outcome(tapSeq: number): Promise<OutcomeReport>;
  close(): Promise<void>;
}

/** A runtime over a real SQLite store, the in-process virtual reader source and a mock peripheral. */
export async function makeRig(
  cfg: Config,
  readers: string[],
  o: { peripherals?: RuntimePeripheral[]; readTimeoutMs?: number; tokenKey?: TokenKey | TokenDeriver } = {},
): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'rc-rt-unit-'));
  const store = Store.open(join(dir, 'device.sqlite'), { deviceId: cfg.device.id });
  seedStore(store);
  const source = new VirtualReaderSource(readers);
  const periph = new MockPeripheral();
  const clock = new TestClock(Date.parse('2026-11-24T08:00:00+03:00'));
  const logs = logSink();
  const runtime = new Runtime({
    config: cfg,
    store,
    source,
    peripherals: o.peripherals ?? [{ peripheral: periph }],
    tokenKey: o.tokenKey ?? DEV_TOKEN_KEY,
    log: logs.log,
    clock,
    readTimeoutMs: o.readTimeoutMs ?? 200,
  });
  await runtime.start();
  const rig: Rig = {
    dir,
    store,
    source,
    runtime,
    periph,
    clock,
    logs,
    tap(reader, spec) {
      const p = runtime.nextTap(reader);
      source.present(reader, spec);
      return p.finally(() => source.remove(reader));
    },
    outcome: (tapSeq) => runtime.nextOutcome(tapSeq),
    async close() {
      await runtime.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return rig;
}
