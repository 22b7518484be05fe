import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { DEFAULT_DIR, isProvisioned } from '../device-dir.js';
import { resetDevice } from '../ops.js';
import { fail } from './common.js';

export function register(program: Command): void {
  program
    .command('reset')
    .description('factory reset: wipes the keys, the database (lists, journal) and the config')
    .option('--dir <dir>', 'device directory', DEFAULT_DIR)
    .option('--yes', 'do not ask for confirmation')
    .option('--json', 'machine-readable output')
    .action(async (o: { dir: string; yes?: boolean; json?: boolean }) => {
      try {
        if (!o.yes) {
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          const note = isProvisioned(o.dir) ? '' : ' (no provisioned device there)';
          const a = await rl
            .question(`Factory reset ${o.dir}${note}: keys, database with unsent journal, config will be deleted. Type "yes" to go on: `)
            .catch(() => '');
          rl.close();
          if (a.trim().toLowerCase() !== 'yes')
            throw new RcError(ErrorCode.ProvisionNotConfirmed, 'factory reset not confirmed; nothing was deleted', { dir: o.dir });
        }
        const removed = resetDevice(o.dir);
        if (o.json) process.stdout.write(JSON.stringify({ dir: o.dir, removed }) + '\n');
        else process.stdout.write(`${o.dir}: factory reset, ${removed.length} item(s) removed\n`);
      } catch (e) {
        fail(e, o.json === true);
      }
    });
}
