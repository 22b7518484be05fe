import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../protocol/log.js';

/**
 * A logger that writes into memory: the test reads what was logged (and checks
 * that no PAN is in it). `RC_TEST_LOG=debug` lowers the level for a run.
 */
export interface LogSink {
  log: Logger;
  /** Every JSON line logged so far (the oldest are dropped past `keep`). */
  lines: string[];
  /** All lines as one string, for `not.toContain(pan)`. */
  text(): string;
  /** The lines parsed, for assertions on fields. */
  records(): Record<string, unknown>[];
}

export function logSink(opts: { level?: string; keep?: number } = {}): LogSink {
  const lines: string[] = [];
  const keep = opts.keep ?? 20_000;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      if (lines.length > keep) lines.splice(0, lines.length - Math.floor(keep / 2));
      cb();
    },
  });
  const log = createLogger({ level: opts.level ?? process.env.RC_TEST_LOG ?? 'info', destination: sink });
  return {
    log,
    lines,
    text: () => lines.join(''),
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A logger for tests that do not look at the log: silent unless RC_TEST_LOG sets a level. */
export function quietLogger(): Logger {
  return createLogger({ level: process.env.RC_TEST_LOG ?? 'silent' });
}
