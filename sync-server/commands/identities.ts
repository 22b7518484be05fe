import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { importIdentities, snilsKey } from '../cabinet/service.js';
import { csvRecords } from '../csv.js';
import { DEFAULT_DATA_DIR, fail } from './client.js';
import { databaseOption, openCommandRegistry, type RegistryOpts } from './database.js';

/**
 * rc-sync-server identities import FILE: link registry persons to their SNILS (CSV `person_id,snils`), so that a holder
 * signing in through ESIA finds their person (benefits, children) at first sign-in. Only HMAC-SHA256(SNILS key, SNILS) is
 * stored (person_snils); the key is DATA/cabinet-snils.key (or the cabinet config's snilsKeyFile). Run on the server's
 * machine with --data (and --database when the registry is on PostgreSQL): the SNILS never crosses the network.
 */
export function register(program: Command): void {
  const ids = program.command('identities').description("the cabinet's person ↔ SNILS links (keyed hashes only)");
  databaseOption(
    ids
      .command('import <file>')
      .description('link persons to their SNILS from a CSV file with the header person_id,snils')
      .option('--data <dir>', 'data directory (registry; the SNILS key)', DEFAULT_DATA_DIR),
  )
    .option('--snils-key <file>', "the SNILS key (default DATA/cabinet-snils.key; the cabinet config's snilsKeyFile if set there)")
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: RegistryOpts & { snilsKey?: string; json?: boolean }) => {
      try {
        const rows: { personId: string; snils: string }[] = [];
        let header = true;
        for await (const r of csvRecords(createReadStream(file))) {
          if (header) {
            header = false;
            if (r.cells.join(',').trim().toLowerCase() !== 'person_id,snils')
              throw new RcError(ErrorCode.ServerImportInvalid, 'the header must be person_id,snils', { line: r.line });
            continue;
          }
          if (r.cells.length !== 2 || !r.cells[0]) throw new RcError(ErrorCode.ServerImportInvalid, 'a row is person_id,snils', { line: r.line });
          rows.push({ personId: r.cells[0], snils: r.cells[1]! });
        }
        const db = openCommandRegistry(opts);
        try {
          const n = importIdentities(db, snilsKey(opts.data, opts.snilsKey), rows);
          process.stdout.write(opts.json ? JSON.stringify({ linked: n }) + '\n' : `linked ${n} persons to their SNILS (hashes only)\n`);
        } finally {
          db.close();
        }
      } catch (e) {
        fail(e, opts.json === true);
      }
    });
}
