import type { Command } from 'commander';
import { DEFAULT_DIR } from '../device-dir.js';
import { rotateDevice } from '../ops.js';
import { fail } from './common.js';

export function register(program: Command): void {
  program
    .command('rotate')
    .description('get new broker credentials from the server (the old password stops working); restart rc-device afterwards')
    .option('--dir <dir>', 'device directory', DEFAULT_DIR)
    .option('--json', 'machine-readable output')
    .action(async (o: { dir: string; json?: boolean }) => {
      try {
        const r = await rotateDevice(o.dir);
        if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
        else process.stdout.write(`device ${r.deviceId}: new broker credentials written (${r.rotatedAt}); restart rc-device to use them\n`);
      } catch (e) {
        fail(e, o.json === true);
      }
    });
}
