import type { Logger } from '../../protocol/log.js';
import type {
  BeepPattern,
  Direction,
  Display,
  DisplayMessage,
  Light,
  PassOutcome,
  PeripheralHealth,
  Turnstile,
  TurnstileEvent,
  TurnstileState,
} from './types.js';

export interface ConsoleOutput {
  write(line: string): void;
}

export interface ConsolePeripheralOptions {
  name?: string;
  /** The pretend person walks through this long after the gate opens; null: nobody comes (open times out). */
  passAfterMs?: number | null;
  passWindowMs?: number;
  out?: ConsoleOutput;
  log?: Logger;
}

const LIGHT: Record<Light, string> = { green: '🟢', red: '🔴', off: '⚪' };
const BEEP: Record<BeepPattern, string> = { none: '', short: ' 🔔', long: ' 🔔', double: ' 🔔🔔', error: ' 🔔🔔🔔' };
const OPEN_TEXT: Record<Direction, string> = {
  entry: 'Турникет открыт на вход / Gate open for entry',
  exit: 'Турникет открыт на выход / Gate open for exit',
};

/** "Проезд льготный — 0 ₽\nBenefit fare — 0 RUB" → "🟢 Проезд льготный — 0 ₽ / Benefit fare — 0 RUB" */
export function formatDisplayLine(msg: DisplayMessage): string {
  const text = msg.text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .join(' / ');
  return `${LIGHT[msg.light]} ${text}${BEEP[msg.beep]}`;
}

/**
 * A turnstile and a display in one, printed to the terminal: the demo's
 * peripheral. It is always healthy and never touches a port.
 */
export class ConsolePeripheral implements Turnstile, Display {
  readonly kind = 'console' as const;
  readonly protocol = 'console';
  readonly port = 'console';
  readonly name: string;
  private state_: TurnstileState = 'closed';
  private readonly out: ConsoleOutput;
  private readonly passAfterMs: number | null;
  private readonly passWindowMs: number;
  private readonly listeners = new Set<(e: TurnstileEvent) => void>();
  private pending: { resolve(o: PassOutcome): void; timer: NodeJS.Timeout } | undefined;
  private readonly since = new Date().toISOString();
  private commands = 0;

  constructor(opts: ConsolePeripheralOptions = {}) {
    this.name = opts.name ?? 'console';
    this.passAfterMs = opts.passAfterMs === undefined ? 300 : opts.passAfterMs;
    this.passWindowMs = opts.passWindowMs ?? 8000;
    this.out = opts.out ?? { write: (l) => process.stdout.write(`${l}\n`) };
  }

  get state(): TurnstileState {
    return this.state_;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    this.pending?.resolve('not-passed');
    if (this.state_ !== 'free-passage' && this.state_ !== 'closed') await this.close();
  }

  health(): PeripheralHealth {
    return {
      status: 'ok',
      since: this.since,
      portOpen: true,
      counters: { commands: this.commands, retries: 0, failures: 0, badFrames: 0, reconnects: 0, openAttempts: 0 },
    };
  }

  onHealth(): () => void {
    return () => undefined;
  }

  onEvent(listener: (e: TurnstileEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async show(msg: DisplayMessage): Promise<boolean> {
    this.commands++;
    this.out.write(formatDisplayLine(msg));
    return true;
  }

  openForEntry(): Promise<PassOutcome> {
    return this.open('entry');
  }

  openForExit(): Promise<PassOutcome> {
    return this.open('exit');
  }

  async close(): Promise<boolean> {
    this.commands++;
    this.pending?.resolve('not-passed');
    this.out.write('🚪 Турникет закрыт / Gate closed');
    this.setState('closed');
    return true;
  }

  async freePassage(on: boolean): Promise<boolean> {
    this.commands++;
    this.pending?.resolve('not-passed');
    this.out.write(on ? '🚪 Свободный проход / Free passage' : '🚪 Турникет закрыт / Gate closed');
    this.setState(on ? 'free-passage' : 'closed');
    return true;
  }

  private open(direction: Direction): Promise<PassOutcome> {
    this.commands++;
    this.pending?.resolve('not-passed');
    this.out.write(`🚪 ${OPEN_TEXT[direction]}`);
    this.setState(direction === 'entry' ? 'open-entry' : 'open-exit');
    return new Promise<PassOutcome>((resolve) => {
      const passes = this.passAfterMs !== null && this.passAfterMs < this.passWindowMs;
      const timer = setTimeout(
        () => {
          const outcome: PassOutcome = passes ? 'passed' : 'not-passed';
          const at = new Date().toISOString();
          this.out.write(passes ? '🚶 Проход состоялся / Passed' : '⌛ Проход не состоялся / Not passed');
          this.emit(passes ? { type: 'passed', direction, at } : { type: 'open-timeout', direction, at });
          this.pending?.resolve(outcome);
        },
        passes ? (this.passAfterMs ?? 0) : this.passWindowMs,
      );
      this.pending = {
        timer,
        resolve: (o) => {
          clearTimeout(timer);
          this.pending = undefined;
          if (this.state_ !== 'free-passage') this.setState('closed');
          resolve(o);
        },
      };
    });
  }

  private setState(s: TurnstileState): void {
    if (s === this.state_) return;
    this.state_ = s;
    this.emit({ type: 'state', state: s, at: new Date().toISOString() });
  }

  private emit(e: TurnstileEvent): void {
    for (const l of this.listeners) l(e);
  }
}
