import type { Command } from 'commander';
import { RevokeAnswer } from '../../protocol/api.js';
import { DeviceList } from '../../protocol/enrol.js';
import { DEFAULT_SERVER, callApi, fail } from './client.js';

export function register(program: Command): void {
  const cmd = program.command('device').description('enrolled devices: list, revoke');
  cmd
    .command('list')
    .description('every enrolled device: kind, school/route, enrolled, revoked, online')
    .option('--server <url>', 'sync-server HTTP API', DEFAULT_SERVER)
    .option('--json', 'machine-readable output')
    .action(async (opts: { server: string; json?: boolean }) => {
      try {
        const l = await callApi(opts.server, 'GET', '/v1/devices', DeviceList);
        if (opts.json) return void process.stdout.write(JSON.stringify(l) + '\n');
        if (l.devices.length === 0) process.stdout.write('no devices enrolled\n');
        for (const d of l.devices) {
          const where =
            d.kind === 'bus'
              ? `route ${d.route ?? '-'}${d.vehicle ? ` vehicle ${d.vehicle}` : ''}`
              : d.kind === 'partner'
                ? `partner ${d.partner ?? '-'}`
                : `school ${d.school ?? '-'}${d.direction ? ` ${d.direction}` : ''}`;
          const state = d.revokedAt ? `REVOKED ${d.revokedAt}` : d.online ? 'online' : 'offline';
          process.stdout.write(`${d.id.padEnd(22)} ${d.kind.padEnd(9)} ${where.padEnd(28)} enrolled ${d.enrolledAt}  ${state}\n`);
        }
      } catch (e) {
        fail(e, opts.json === true);
      }
    });
  cmd
    .command('revoke <id>')
    .description('cut a device off at once: its broker credentials stop working and it is disconnected')
    .option('--server <url>', 'sync-server HTTP API', DEFAULT_SERVER)
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { server: string; json?: boolean }) => {
      try {
        const r = await callApi(opts.server, 'POST', `/v1/devices/${encodeURIComponent(id)}/revoke`, RevokeAnswer);
        if (opts.json) process.stdout.write(JSON.stringify(r) + '\n');
        else process.stdout.write(`device ${r.id} revoked at ${r.revokedAt}\n`);
      } catch (e) {
        fail(e, opts.json === true);
      }
    });
}
