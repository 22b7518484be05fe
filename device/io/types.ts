import type { ErrorCode } from '../../protocol/errors.js';

/**
 * Peripherals as the tap loop sees them. A peripheral never throws into the
 * tap loop: a failed command resolves (false / 'not-passed'), and the failure
 * becomes the peripheral's health plus a logged RcError with an `io.*` code.
 */

/** ok: the last exchange worked; degraded: the port is open but the peripheral failed to answer or refused; down: no port, or repeated failures. */
export type HealthStatus = 'ok' | 'degraded' | 'down';

export interface PeripheralHealth {
  status: HealthStatus;
  /** When the status last changed (ISO 8601). */
  since: string;
  /** Whether the serial port is open right now (always true for the console). */
  portOpen: boolean;
  lastError?: { code: ErrorCode; message: string; at: string };
  counters: {
    /** Commands sent (each counted once, retries apart). */
    commands: number;
    /** Frames sent again after a missing acknowledgement or a NAK. */
    retries: number;
    /** Commands that failed after all retries. */
    failures: number;
    /** Received byte runs that were not a valid frame (garbage, bad CRC). */
    badFrames: number;
    /** Successful re-opens of the port after it went away. */
    reconnects: number;
    /** Attempts to open the port (successful or not). */
    openAttempts: number;
  };
}

export type PeripheralKind = 'turnstile' | 'display' | 'console';

export interface PeripheralBase {
  readonly name: string;
  readonly kind: PeripheralKind;
  /** `rcp1`, a vendor protocol's name, or `console`. */
  readonly protocol: string;
  /** Serial port path, or `console`. */
  readonly port: string;
  /** Opens the port and starts reconnecting in the background when it is absent. Never throws. */
  start(): Promise<void>;
  /** Releases the port. A turnstile closes its gate first unless it is in free-passage mode. Never throws. */
  stop(): Promise<void>;
  health(): PeripheralHealth;
  /** Called on each status transition (ok → degraded → down → ok …). Returns an unsubscribe function. */
  onHealth(listener: (h: PeripheralHealth) => void): () => void;
}

export type Direction = 'entry' | 'exit';

/** passed: the controller reported a person through; not-passed: the passage window ran out, or the gate did not open. */
export type PassOutcome = 'passed' | 'not-passed';

export type TurnstileState = 'closed' | 'open-entry' | 'open-exit' | 'free-passage' | 'unknown';

export type TurnstileEvent =
  | { type: 'passed'; direction: Direction; at: string }
  | { type: 'open-timeout'; direction: Direction; at: string }
  | { type: 'tamper'; detail: number; at: string }
  | { type: 'state'; state: TurnstileState; at: string };

export interface Turnstile extends PeripheralBase {
  /** Opens for one entry; resolves when the person passed or the passage window ran out. Opens are served one at a time. */
  openForEntry(): Promise<PassOutcome>;
  openForExit(): Promise<PassOutcome>;
  /** Closes the gate (a pending open resolves 'not-passed'). Resolves true when the controller acknowledged. */
  close(): Promise<boolean>;
  /** Free passage on/off (e.g. emergency). Resolves true when the controller acknowledged. */
  freePassage(on: boolean): Promise<boolean>;
  readonly state: TurnstileState;
  onEvent(listener: (e: TurnstileEvent) => void): () => void;
}

export type Light = 'green' | 'red' | 'off';
export type BeepPattern = 'none' | 'short' | 'long' | 'double' | 'error';

export interface DisplayMessage {
  /** UTF-8 text, Cyrillic welcome; lines separated by '\n'. Too long a text is cut at a character boundary. */
  text: string;
  light: Light;
  beep: BeepPattern;
}

export interface Display extends PeripheralBase {
  /** Resolves true when the display acknowledged. */
  show(msg: DisplayMessage): Promise<boolean>;
}

export type Peripheral = Turnstile | Display | (Turnstile & Display);

export function isTurnstile(p: Peripheral): p is Turnstile {
  return typeof (p as Partial<Turnstile>).openForEntry === 'function';
}

export function isDisplay(p: Peripheral): p is Display {
  return typeof (p as Partial<Display>).show === 'function';
}
