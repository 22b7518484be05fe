import type { Command } from 'commander';
import { ErrorCode, isRcError } from '../../protocol/errors.js';
import { createLogger, setRootLogger } from '../../protocol/log.js';
import { loadConfigFile } from '../config/load.js';
import { startDevice } from '../runtime/device.js';
import { prettyStream } from '../runtime/pretty.js';

/**
 * `rc-device run --config FILE [--pretty]`: the device. Logs are pino JSON on
 * stderr (human-readable with --pretty). SIGTERM / SIGINT: the tap in
 * progress finishes, the gate closes (unless in free passage), sync stops,
 * the store closes, exit 0. Exit 2: the config or the store cannot be used;
 * 3: another instance answers on the status socket.
 */
export function register(program: Command): void {
  program
    .command('run')
    .description('run the device: readers → decisions → journal → peripherals → sync')
    .requiredOption('--config <file>', 'device config (JSON)')
    .option('--pretty', 'human-readable logs instead of JSON')
    .option('--dev-token-key', 'accept the public development token key when none is configured (demo and tests only)')
    .action(async (opts: { config: string; pretty?: boolean; devTokenKey?: boolean }) => {
      const log = opts.pretty ? createLogger({ destination: prettyStream() }) : createLogger();
      setRootLogger(log);
      let cfg;
      try {
        cfg = loadConfigFile(opts.config);
      } catch (e) {
        fail(e, 2);
        return;
      }
      // nothing a card, a peripheral or the network does may end the process
      process.on('unhandledRejection', (e) =>
        log.error({ code: ErrorCode.RuntimeTapFailed, err: e instanceof Error ? e.message : String(e) }, 'unhandled rejection; continuing'),
      );
      process.on('uncaughtException', (e) => log.error({ code: ErrorCode.RuntimeTapFailed, err: e.message }, 'uncaught exception; continuing'));
      let device;
      try {
        // the PC/SC context is released by the process exit (closing it can block on a card stuck in pcscd)
        device = await startDevice({ config: cfg, configFile: opts.config, log, closeSource: false, allowDevTokenKey: opts.devTokenKey === true });
      } catch (e) {
        fail(e, isRcError(e, ErrorCode.RuntimeAlreadyRunning) ? 3 : 2);
        return;
      }
      const dev = device;
      log.info({ statusSocket: dev.paths.statusSocket, store: dev.paths.storePath, pid: process.pid }, 'rc-device running');
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          log.warn({ signal }, 'second signal while stopping: exiting now');
          process.exit(1);
        }
        stopping = true;
        log.info({ signal }, 'signal received: stopping');
        void dev.stop().then(
          () => {
            log.info({}, 'stopped; exiting');
            process.exit(0);
          },
          (e: unknown) => {
            log.error({ err: String(e) }, 'stop failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      await new Promise<never>(() => undefined); // runs until a signal
    });
}

function fail(e: unknown, exitCode: number): void {
  if (isRcError(e)) process.stderr.write(`${e.code}: ${e.message}\n`);
  else process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = exitCode;
}
