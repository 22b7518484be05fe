import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { createLogger } from '../../protocol/log.js';
import { ERROR_HELP } from '../../protocol/error-help.js';
import type { ErrorCode } from '../../protocol/errors.js';
import { CHECK_IDS, runCheck, type CheckId } from '../check.js';
import { DEFAULT_DIR } from '../device-dir.js';
import { fail } from './common.js';

export function register(program: Command): void {
  program
    .command('check')
    .description('self-test: reader, a card tap, peripherals, broker credentials, first sync, disk, clock; exit 1 if anything fails')
    .option('--dir <dir>', 'device directory', DEFAULT_DIR)
    .option('--json', 'machine-readable output')
    .option('--skip <items>', `comma-separated items to skip (${CHECK_IDS.join(', ')})`)
    .option('--card-timeout <s>', 'seconds to wait for a card tap', '30')
    .option('--sync-timeout <s>', 'seconds to wait for the first sync', '120')
    .option('--min-free-mb <n>', 'free disk space needed', '200')
    .action(async (o: { dir: string; json?: boolean; skip?: string; cardTimeout: string; syncTimeout: string; minFreeMb: string }) => {
      try {
        const skip = (o.skip ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean) as CheckId[];
        const unknown = skip.filter((s) => !CHECK_IDS.includes(s));
        if (unknown.length) throw new Error(`unknown check item(s): ${unknown.join(', ')} (known: ${CHECK_IDS.join(', ')})`);
        const tty = !o.json && process.stderr.isTTY === true;
        let bar: cliProgress.SingleBar | null = null;
        const report = await runCheck({
          dir: o.dir,
          log: createLogger({ level: process.env.RC_LOG_LEVEL ?? 'warn' }),
          skip,
          cardTimeoutMs: Number(o.cardTimeout) * 1000,
          syncTimeoutMs: Number(o.syncTimeout) * 1000,
          minFreeMb: Number(o.minFreeMb),
          onPrompt: (t) => {
            if (!o.json) process.stderr.write(`  … ${t}\n`);
          },
          onSyncProgress: (p) => {
            if (o.json) return;
            if (!bar) {
              bar = new cliProgress.SingleBar(
                {
                  format: '  first sync |{bar}| {value}/{total} lists {scope}',
                  stream: process.stderr,
                  noTTYOutput: !tty,
                  notTTYSchedule: 1000,
                  hideCursor: true,
                  clearOnComplete: false,
                },
                cliProgress.Presets.shades_classic,
              );
              bar.start(p.total, p.done, { scope: '' });
            }
            bar.update(p.done, { scope: p.scope ?? '' });
            if (p.done >= p.total) bar.stop();
          },
          onItem: (i) => {
            if (o.json) return;
            if (i.id === 'sync') (bar as cliProgress.SingleBar | null)?.stop();
            const help = i.code ? ERROR_HELP[i.code as ErrorCode] : undefined;
            process.stdout.write(
              `${i.ok ? 'PASS' : 'FAIL'}  ${i.title.padEnd(32)} ${i.ok ? i.detail : `${i.code}: ${i.detail}`}\n${!i.ok && help ? `      what to do: ${help.action}\n` : ''}`,
            );
          },
        });
        if (o.json) process.stdout.write(JSON.stringify(report) + '\n');
        else
          process.stdout.write(
            report.ok
              ? `all ${report.items.length} checks passed (${report.totalMs} ms)\n`
              : `${report.items.filter((i) => !i.ok).length} of ${report.items.length} checks FAILED\n`,
          );
        if (!report.ok) process.exitCode = 1;
      } catch (e) {
        fail(e, o.json === true);
      }
    });
}
