import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { PublicKey, REPORT_FORMATS, ReportFormat } from '../../protocol/api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { REPORT_NAMES, ReportDoc, ReportName } from '../../protocol/reports.js';
import { renderReport } from '../reports/format.js';
import { verifyReport } from '../reports/sign.js';
import { DEFAULT_SERVER, callApi, fail } from './client.js';

interface Opts {
  month?: string;
  carrier?: string;
  school?: string;
  partner?: string;
  day?: string;
  since?: string;
  silentHours?: string;
  asOf?: string;
  format: string;
  out?: string;
  server: string;
  publicKey?: string;
  keyFromServer?: string;
  json?: boolean;
}

/**
 * rc-sync-server report <name> …: the server builds and signs the report (GET /v1/reports/<name>);
 * other formats than JSON are written here from that signed document.
 * rc-sync-server report verify FILE: checks a JSON report's SHA-256 and Ed25519 signature, offline.
 */
export function register(program: Command): void {
  program
    .command('report')
    .description(`a signed report (${REPORT_NAMES.join(' | ')}), or: report verify FILE`)
    .argument('<name>', `${REPORT_NAMES.join(' | ')} | verify`)
    .argument('[file]', 'verify: the report file (JSON)')
    .option('--month <YYYY-MM>', 'compensation, charging, attendance, meals, partners: the month')
    .option('--carrier <id>', 'compensation: one carrier')
    .option('--school <id>', 'attendance, meals: the school')
    .option('--partner <id>', 'partners: one partner')
    .option('--day <YYYY-MM-DD>', 'attendance: one day')
    .option('--since <YYYY-MM-DD>', 'devices: data quality from this day')
    .option('--silent-hours <n>', 'devices: silent after this many hours', '24')
    .option('--as-of <iso>', 'devices: the moment "silent" is measured at (default: now)')
    .option('--format <format>', REPORT_FORMATS.join(' | '), 'json')
    .option('--out <file>', 'write the report to this file (default: standard output)')
    .option('--server <url>', 'sync-server HTTP API', DEFAULT_SERVER)
    .option('--public-key <file>', "verify: the operator's published public key (PEM) the report must be signed with")
    .option('--key-from-server <url>', "verify: take the operator's public key from this server (GET /v1/public-key)")
    .option('--json', 'machine-readable output (verify; errors)')
    .action(async (name: string, file: string | undefined, o: Opts) => {
      const json = o.json === true;
      try {
        if (name === 'verify') return await verify(file, o);
        if (!ReportName.safeParse(name).success)
          throw new RcError(ErrorCode.InputInvalid, `unknown report "${name}"; expected ${REPORT_NAMES.join(', ')} or verify`);
        const format = ReportFormat.safeParse(o.format);
        if (!format.success) throw new RcError(ErrorCode.InputInvalid, `unknown format "${o.format}"; expected ${REPORT_FORMATS.join(', ')}`);
        const q = new URLSearchParams();
        const put = (k: string, v: string | undefined) => v !== undefined && q.set(k, v);
        put('month', o.month);
        put('carrier', o.carrier);
        put('school', o.school);
        put('partner', o.partner);
        put('day', o.day);
        put('since', o.since);
        if (name === 'devices') put('silentHours', o.silentHours);
        put('asOf', o.asOf);
        const doc = await callApi(o.server, 'GET', `/v1/reports/${name}?${q}`, ReportDoc);
        const bytes = await renderReport(doc, format.data);
        if (o.out) writeFileSync(o.out, bytes);
        else process.stdout.write(bytes);
      } catch (e) {
        fail(e, json);
      }
    });
}

async function verify(file: string | undefined, o: Opts): Promise<void> {
  if (!file) throw new RcError(ErrorCode.InputInvalid, 'report verify FILE: name the report file');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new RcError(ErrorCode.ReportSignatureInvalid, `${file} is not a JSON report (${(e as Error).message.split('\n')[0]})`, { file });
  }
  let trusted: string | undefined;
  if (o.publicKey) trusted = readFileSync(o.publicKey, 'utf8');
  else if (o.keyFromServer) trusted = (await callApi(o.keyFromServer, 'GET', '/v1/public-key', PublicKey)).pem;
  const { doc, sha256 } = verifyReport(raw, trusted);
  if (o.json)
    return void process.stdout.write(JSON.stringify({ ok: true, report: doc.report, params: doc.params, sha256, trustedKey: trusted !== undefined }) + '\n');
  process.stdout.write(`${file}: signature OK (${doc.report} ${JSON.stringify(doc.params)}, sha256 ${sha256})\n`);
  if (!trusted)
    process.stdout.write("checked against the key inside the report: compare it with the operator's (--public-key FILE or --key-from-server URL)\n");
}
