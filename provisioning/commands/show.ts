import type { Command } from 'commander';
import { DEFAULT_DIR } from '../device-dir.js';
import { showDevice } from '../ops.js';
import { fail } from './common.js';

export function register(program: Command): void {
  program
    .command('show')
    .description('who this device is: id, kind, school/route, server, broker, lists, keys (never secrets)')
    .option('--dir <dir>', 'device directory', DEFAULT_DIR)
    .option('--json', 'machine-readable output')
    .action((o: { dir: string; json?: boolean }) => {
      try {
        const s = showDevice(o.dir);
        if (o.json) return void process.stdout.write(JSON.stringify(s) + '\n');
        const where =
          s.kind === 'bus'
            ? `route ${s.route ?? '-'}${s.vehicle ? `, vehicle ${s.vehicle}` : ''}`
            : s.kind === 'partner'
              ? `partner ${s.partner ?? '-'}`
              : `school ${s.school ?? '-'}${s.direction ? `, direction ${s.direction}` : ''}`;
        process.stdout.write(
          [
            `device      ${s.deviceId} (${s.kind}, ${where})`,
            `server      ${s.server}`,
            `broker      ${s.brokerUrl} as ${s.username ?? '-'}`,
            `lists       ${s.scopes.join(', ')}`,
            `enrolled    ${s.enrolledAt}${s.rotatedAt ? `, credentials rotated ${s.rotatedAt}` : ''}`,
            `identity    ${s.identityKey} (Ed25519)`,
            `server key  sha256:${s.serverKeyFingerprint}`,
            `token key   version ${s.tokenKeyVersion}`,
            `readers     ${s.readers.length ? s.readers.join(', ') : 'every PC/SC reader present'}`,
            `peripherals ${s.peripherals.length ? s.peripherals.join(', ') : 'none'}`,
            `config      ${s.configFile}`,
          ].join('\n') + '\n',
        );
      } catch (e) {
        fail(e, o.json === true);
      }
    });
}
