import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { ConfigAnswer } from '../../protocol/api.js';
import { DEFAULT_SERVER, callApi, fail } from './client.js';

export function register(program: Command): void {
  const cfg = program.command('config').description('tariffs and school schedules published to devices');
  cfg
    .command('set')
    .description('publish a rules file (tariff / school / canteen, the device config formats) to devices')
    .argument('<file>', 'JSON rules file')
    .option('--name <name>', 'document name (devices receive rc/v1/config/<name>)', 'rules')
    .option('--server <url>', 'sync-server HTTP API', DEFAULT_SERVER)
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: { name: string; server: string; json?: boolean }) => {
      try {
        let rules: unknown;
        try {
          rules = JSON.parse(readFileSync(file, 'utf8'));
        } catch (e) {
          throw new RcError(ErrorCode.InputInvalid, `${file}: not readable JSON (${(e as Error).message})`, { file });
        }
        const r = await callApi(opts.server, 'POST', '/v1/config', ConfigAnswer, { name: opts.name, rules });
        process.stdout.write(opts.json ? JSON.stringify(r) + '\n' : `config ${r.name} version ${r.version} published\n`);
      } catch (e) {
        fail(e, opts.json === true);
      }
    });
}
