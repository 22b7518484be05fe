import { pino, destination, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

/**
 * One pino logger per process, a child per component:
 *   const log = rootLogger().child({ component: 'reader' });
 * Redaction is configured here once for every field that could hold card data.
 * Code must never log a PAN in a message string either: log the masked PAN or
 * the token.
 */
const REDACT = [
  'pan',
  '*.pan',
  'track2',
  '*.track2',
  'apdu',
  '*.apdu',
  'response',
  '*.response',
  'record',
  '*.record',
  'tokenKey',
  '*.tokenKey',
  'privateKey',
  '*.privateKey',
  'password',
  '*.password',
];

let root: Logger | undefined;

export function createLogger(opts: { level?: string; destination?: DestinationStream; name?: string } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? process.env.RC_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
    base: opts.name ? { name: opts.name } : {},
  };
  return opts.destination ? pino(options, opts.destination) : pino(options, destination(2));
}

/** The process-wide logger (stderr, JSON). Replace it once at start-up with setRootLogger. */
export function rootLogger(): Logger {
  root ??= createLogger();
  return root;
}

export function setRootLogger(l: Logger): void {
  root = l;
}

export type { Logger };
