import { z } from 'zod';
import { ErrorCode, RcError } from '../../protocol/errors.js';

/**
 * Timing of a serial peripheral. Defaults suit a controller at 19200 baud;
 * tests pass short ones. See docs/serial-protocol.md §5.
 */
export const TimingSchema = z.object({
  /** Wait for ACK/NAK after the last byte of a frame was written (plus the frame's own transmission time). */
  ackTimeoutMs: z.number().int().min(1).max(60_000).default(150),
  /** Frames sent again after a missing ACK or a retryable NAK; a command is tried 1 + retries times. */
  retries: z.number().int().min(0).max(10).default(2),
  /** How long an opened gate waits for a person (sent to the controller in the OPEN command). */
  passWindowMs: z.number().int().min(1).max(65_535).default(8000),
  /** Extra wait beyond the passage window for the controller's PASSED/OPEN_TIMEOUT event before the host gives up. */
  passGuardMs: z.number().int().min(0).max(60_000).default(1000),
  /** A partly received frame is dropped when no byte follows for this long (resynchronisation). */
  interByteTimeoutMs: z.number().int().min(1).max(10_000).default(50),
  /** First wait before re-opening a port that went away; doubles up to reconnectMaxMs. */
  reconnectMinMs: z.number().int().min(1).max(60_000).default(250),
  reconnectMaxMs: z.number().int().min(1).max(600_000).default(5000),
  /** How often an open port's path is checked for having vanished (pty removed, USB adapter pulled); 0 disables. */
  portCheckMs: z.number().int().min(0).max(60_000).default(1000),
  /** PING the peripheral this often when idle, so health is known between taps; 0 disables. */
  keepaliveMs: z.number().int().min(0).max(3_600_000).default(5000),
  /** Consecutive failed commands after which the peripheral counts as down rather than degraded. */
  downAfterFailures: z.number().int().min(1).max(100).default(3),
});
export type Timing = z.infer<typeof TimingSchema>;

const name = z.string().min(1).max(64).optional();

const SerialPeripheralConfig = {
  name,
  /** Protocol spoken on the port; one file per protocol in device/io/protocols/. */
  protocol: z.string().min(1).max(32).default('rcp1'),
  /** Serial port path, e.g. /dev/ttyUSB0 or /dev/serial/by-id/… */
  port: z.string().min(1).max(4096),
  baudRate: z.number().int().positive().max(4_000_000).default(19200),
  timing: TimingSchema.partial().default({}),
};

export const PeripheralConfigSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('turnstile'), ...SerialPeripheralConfig }).strict(),
  z.object({ kind: z.literal('display'), ...SerialPeripheralConfig }).strict(),
  z
    .object({
      kind: z.literal('console'),
      name,
      /** The console turnstile reports "passed" this long after opening; null: never (open times out after passWindowMs). */
      passAfterMs: z.number().int().min(0).max(60_000).nullable().default(300),
      passWindowMs: z.number().int().min(1).max(65_535).default(8000),
    })
    .strict(),
]);
export type PeripheralConfig = z.infer<typeof PeripheralConfigSchema>;

export function resolveTiming(partial: Partial<Timing> | undefined): Timing {
  return TimingSchema.parse(partial ?? {});
}

/** Validates a peripheral's config; throws RcError config.invalid with the offending path. */
export function parsePeripheralConfig(raw: unknown): PeripheralConfig {
  const r = PeripheralConfigSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new RcError(ErrorCode.ConfigInvalid, `invalid peripheral config: ${issue?.message ?? 'unknown'}`, {
      path: issue ? issue.path.join('.') : '',
    });
  }
  const cfg = r.data;
  if (cfg.kind !== 'console') {
    const t = resolveTiming(cfg.timing);
    if (t.reconnectMaxMs < t.reconnectMinMs) {
      throw new RcError(ErrorCode.ConfigInvalid, 'invalid peripheral config: reconnectMaxMs < reconnectMinMs', { path: 'timing.reconnectMaxMs' });
    }
  }
  return cfg;
}
