import type { Command } from 'commander';
import { StatusAnswer } from '../../protocol/api.js';
import { DEFAULT_SERVER, callApi, fail } from './client.js';

export function register(program: Command): void {
  program
    .command('status')
    .description('every device: online/offline, last seen, list versions vs current, journal backlog')
    .option('--server <url>', 'sync-server HTTP API', DEFAULT_SERVER)
    .option('--json', 'machine-readable output')
    .action(async (opts: { server: string; json?: boolean }) => {
      try {
        const s = await callApi(opts.server, 'GET', '/v1/status', StatusAnswer);
        if (opts.json) return void process.stdout.write(JSON.stringify(s) + '\n');
        process.stdout.write(
          `current lists: ${
            Object.entries(s.current)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ') || '(none)'
          }\n`,
        );
        if (s.notifications?.pending || s.notifications?.failed)
          process.stdout.write(`guardians' messages: ${s.notifications.pending} pending, ${s.notifications.failed} failed (rc-sync-server notifications)\n`);
        for (const d of s.devices) {
          const lists = Object.entries(d.lists)
            .map(([k, v]) => `${k}=${v.device}${v.device < v.current ? `(<${v.current})` : ''}`)
            .join(' ');
          process.stdout.write(`${d.id.padEnd(20)} ${d.online ? 'online ' : 'OFFLINE'} last seen ${d.lastSeen ?? 'never'}  backlog ${d.backlog}  ${lists}\n`);
        }
      } catch (e) {
        fail(e, opts.json === true);
      }
    });
}
