import type { Command } from 'commander';
import { isRcError } from '../../protocol/errors.js';
import { loadConfigFile } from '../config/load.js';
import { devicePaths } from '../runtime/device.js';
import { formatStatus, queryStatus } from '../runtime/status.js';

/**
 * `rc-device status [--json] [--socket PATH | --config FILE]`: asks the running
 * device over its local status socket. The socket: --socket, else the one the
 * config names (runtime.statusSocket, default <dataDir>/rc-device.sock), else
 * $RC_STATUS_SOCKET, else ./rc-device.sock. Exit 0 answered; 3 runtime.not-running;
 * 2 the config cannot be read.
 */
export function register(program: Command): void {
  program
    .command('status')
    .description("ask the running device for its readers, peripherals, last tap, lists, journal backlog and broker connection")
    .option('--json', 'one JSON object')
    .option('--socket <path>', 'status socket of the running device')
    .option('--config <file>', 'device config (the socket is found from it)')
    .action(async (opts: { json?: boolean; socket?: string; config?: string }) => {
      let socket = opts.socket;
      if (!socket && opts.config) {
        try {
          socket = devicePaths(loadConfigFile(opts.config), opts.config).statusSocket;
        } catch (e) {
          report(e, opts.json === true, 2);
          return;
        }
      }
      socket ??= process.env.RC_STATUS_SOCKET ?? 'rc-device.sock';
      try {
        const s = await queryStatus(socket);
        process.stdout.write(opts.json ? `${JSON.stringify(s)}\n` : `${formatStatus(s)}\n`);
      } catch (e) {
        report(e, opts.json === true, 3);
      }
    });
}

function report(e: unknown, json: boolean, exitCode: number): void {
  const code = isRcError(e) ? e.code : 'error';
  const message = e instanceof Error ? e.message : String(e);
  if (json) process.stdout.write(`${JSON.stringify({ error: code, message })}\n`);
  else process.stderr.write(`${code}: ${message}\n`);
  process.exitCode = exitCode;
}
