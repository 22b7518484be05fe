import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { IMPORT_KINDS, ImportAnswer, ImportKind, ImportReport } from '../../protocol/api.js';
import { DEFAULT_SERVER, callApi, fail, fileSize } from './client.js';

export function register(program: Command): void {
  program
    .command('import')
    .description(`import a CSV file into the registry (${IMPORT_KINDS.join(' | ')}) and publish new list versions`)
    .argument('<kind>', IMPORT_KINDS.join(' | '))
    .argument('<file>', 'CSV file with a header row (UTF-8)')
    .option('--skip-invalid', 'apply the good rows and report the bad ones (default: reject the whole file)')
    .option('--server <url>', 'sync-server HTTP API', DEFAULT_SERVER)
    .option('--json', 'machine-readable output')
    .action(async (kind: string, file: string, opts: { skipInvalid?: boolean; server: string; json?: boolean }) => {
      const json = opts.json === true;
      try {
        if (!ImportKind.safeParse(kind).success)
          throw new RcError(ErrorCode.InputInvalid, `unknown import kind "${kind}"; expected ${IMPORT_KINDS.join(', ')}`);
        const size = fileSize(file);
        const bar =
          !json && size > 1_000_000 && process.stderr.isTTY
            ? new SingleBar({ format: 'importing {bar} {percentage}% | {value}/{total} bytes', stream: process.stderr }, Presets.shades_classic)
            : null;
        bar?.start(size, 0);
        const r = await callApi(opts.server, 'POST', `/v1/import/${kind}?skipInvalid=${opts.skipInvalid === true}`, ImportAnswer, {
          file,
          onBytes: (n: number) => bar?.update(n),
        }).finally(() => bar?.stop());
        if (json) process.stdout.write(JSON.stringify(r) + '\n');
        else {
          const rep = r.report;
          process.stdout.write(`${kind}: ${rep.applied} of ${rep.rows} rows applied${rep.rejected ? `, ${rep.rejected} skipped` : ''}\n`);
          for (const e of rep.errors) process.stdout.write(`  line ${e.line}, column ${e.column}: ${e.reason}\n`);
          process.stdout.write(
            `list versions: ${
              Object.entries(r.versions)
                .map(([s, v]) => `${s}=${v}`)
                .join(' ') || '(none)'
            }\n`,
          );
        }
      } catch (e) {
        // server.import-invalid carries the report: name every bad row
        const rep = !json && e instanceof RcError ? ImportReport.safeParse(e.context?.report) : null;
        if (e instanceof RcError && rep?.success) {
          process.stderr.write(`${e.code}: ${e.message}\n`);
          for (const x of rep.data.errors) process.stderr.write(`  line ${x.line}, column ${x.column}: ${x.reason}\n`);
          process.exitCode = 1;
        } else fail(e, json);
      }
    });
}
