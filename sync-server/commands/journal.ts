import type { Command } from 'commander';
import { JournalAnswer } from '../../protocol/api.js';
import { DEFAULT_SERVER, callApi, fail } from './client.js';

export function register(program: Command): void {
  program
    .command('journal')
    .description("taps received from devices: the device's decision and the back office's settled one, route, vehicle")
    .option('--device <id>', 'only this device')
    .option('--flagged', 'only entries left out of settlement (unknown route, time out of range, impossible trip)')
    .option('--limit <n>', 'at most this many entries', '1000')
    .option('--server <url>', 'sync-server HTTP API', DEFAULT_SERVER)
    .option('--json', 'machine-readable output')
    .action(async (opts: { device?: string; flagged?: boolean; limit: string; server: string; json?: boolean }) => {
      try {
        const q = new URLSearchParams({ limit: opts.limit });
        if (opts.device) q.set('device', opts.device);
        if (opts.flagged) q.set('flagged', '1');
        const r = await callApi(opts.server, 'GET', `/v1/journal?${q}`, JournalAnswer);
        if (opts.json) return void process.stdout.write(JSON.stringify(r) + '\n');
        for (const e of r.entries) {
          const settled = e.settled ? `settled ${e.settled.reason} ${(e.settled.fareKopecks / 100).toFixed(2)}` : (e.flagged ?? 'unsettled');
          const where = `${e.route ?? '-'}/${e.vehicle ?? '-'}`;
          const device = `${e.result} ${e.reason} ${(e.fare / 100).toFixed(2)} ${e.benefit ?? ''}`;
          process.stdout.write(`${e.time} ${e.device}#${e.seq} ${e.token ?? '-'} ${where} ${device} ${settled}\n`);
        }
      } catch (e) {
        fail(e, opts.json === true);
      }
    });
}
