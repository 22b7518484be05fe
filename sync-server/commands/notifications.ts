import type { Command } from 'commander';
import { NotificationsAnswer } from '../../protocol/api.js';
import { DEFAULT_SERVER, callApi, fail } from './client.js';

export function register(program: Command): void {
  program
    .command('notifications')
    .description("guardians' messages not delivered yet (pending with the last failure's reason, failed for good) and counts by state")
    .option('--limit <n>', 'at most this many messages', '1000')
    .option('--server <url>', 'sync-server HTTP API', DEFAULT_SERVER)
    .option('--json', 'machine-readable output')
    .action(async (opts: { limit: string; server: string; json?: boolean }) => {
      try {
        const r = await callApi(opts.server, 'GET', `/v1/notifications?${new URLSearchParams({ limit: opts.limit })}`, NotificationsAnswer);
        if (opts.json) return void process.stdout.write(JSON.stringify(r) + '\n');
        const c = r.counts;
        process.stdout.write(`notifications: ${c.pending} pending, ${c.failed} failed, ${c.sent} sent, ${c.cancelled} cancelled\n`);
        for (const m of r.messages) {
          const next = m.state === 'pending' ? ` next ${m.nextAttempt ?? '-'}` : '';
          process.stdout.write(
            `${m.created} ${m.state.padEnd(7)} ${m.event.padEnd(6)} guardian ${m.guardian} child ${m.person} attempts ${m.attempts}${next}${m.lastError ? `  ${m.lastError}` : ''}\n`,
          );
        }
      } catch (e) {
        fail(e, opts.json === true);
      }
    });
}
