import type { Command } from 'commander';
import { JournalAnswer } from '../../protocol/api.js';
import { DEFAULT_SERVER, callApi, fail } from './client.js';

export function register(program: Command): void {
  program
    .command('journal')
    .description('taps received from devices (time, device, token, result, reason, fare, benefit)')
    .option('--device <id>', 'only this device')
    .option('--limit <n>', 'at most this many entries', '1000')
    .option('--server <url>', 'sync-server HTTP API', DEFAULT_SERVER)
    .option('--json', 'machine-readable output')
    .action(async (opts: { device?: string; limit: string; server: string; json?: boolean }) => {
      try {
        const q = new URLSearchParams({ limit: opts.limit });
        if (opts.device) q.set('device', opts.device);
        const r = await callApi(opts.server, 'GET', `/v1/journal?${q}`, JournalAnswer);
        if (opts.json) return void process.stdout.write(JSON.stringify(r) + '\n');
        for (const e of r.entries) {
          process.stdout.write(`${e.time} ${e.device}#${e.seq} ${e.token ?? '-'} ${e.result} ${e.reason} ${(e.fare / 100).toFixed(2)} ${e.benefit ?? ''}\n`);
        }
      } catch (e) {
        fail(e, opts.json === true);
      }
    });
}
