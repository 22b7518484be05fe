import type { Command } from 'commander';
import { isRcError } from '../../protocol/errors.js';
import { loadConfigFile } from '../config/load.js';
import { SYSTEM_STATUS_SOCKET, devicePaths } from '../runtime/device.js';
import { formatStatus, queryStatus } from '../runtime/status.js';

/**
 * `rc-device status [--json] [--socket PATH | --config FILE]`: asks the running
 * device over its local status socket: --socket; else the config's socket
 * (see devicePaths) or $RC_STATUS_SOCKET; then /run/rc-device/rc-device.sock
 * (the systemd unit's), then ./rc-device.sock. Exit 0 answered;
 * 3 runtime.not-running; 2 the config cannot be read.
 */
export function register(program: Command): void {
  program
    .command('status')
    .description('ask the running device for its readers, peripherals, last tap, lists, journal backlog and broker connection')
    .option('--json', 'one JSON object')
    .option('--socket <path>', 'status socket of the running device')
    .option('--config <file>', 'device config (the socket is found from it)')
    .action(async (opts: { json?: boolean; socket?: string; config?: string }) => {
      // where to ask: --socket; else the config's socket; else $RC_STATUS_SOCKET; then the systemd
      // unit's /run/rc-device/rc-device.sock; then ./rc-device.sock
      const candidates: string[] = [];
      if (opts.socket) candidates.push(opts.socket);
      else {
        if (opts.config) {
          try {
            candidates.push(devicePaths(loadConfigFile(opts.config), opts.config).statusSocket);
          } catch (e) {
            report(e, opts.json === true, 2);
            return;
          }
        } else if (process.env.RC_STATUS_SOCKET) candidates.push(process.env.RC_STATUS_SOCKET);
        candidates.push(SYSTEM_STATUS_SOCKET, 'rc-device.sock');
      }
      let lastErr: unknown;
      for (const socket of [...new Set(candidates)]) {
        try {
          const s = await queryStatus(socket);
          process.stdout.write(opts.json ? `${JSON.stringify(s)}\n` : `${formatStatus(s)}\n`);
          return;
        } catch (e) {
          lastErr ??= e;
        }
      }
      report(lastErr, opts.json === true, 3);
    });
}

function report(e: unknown, json: boolean, exitCode: number): void {
  const code = isRcError(e) ? e.code : 'error';
  const message = e instanceof Error ? e.message : String(e);
  if (json) process.stdout.write(`${JSON.stringify({ error: code, message })}\n`);
  else process.stderr.write(`${code}: ${message}\n`);
  process.exitCode = exitCode;
}
