import type { Command } from 'commander';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { TokenCreateBody, TokenCreated } from '../../protocol/enrol.js';
import { DEFAULT_SERVER, callApi, fail } from './client.js';

/** "90s", "15m", "1h", "7d" → seconds. */
export function parseTtl(s: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(s.trim());
  if (!m) throw new RcError(ErrorCode.ServerBadRequest, `not a duration: ${s} (use e.g. 30m, 1h, 2d)`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

export function register(program: Command): void {
  const cmd = program.command('enrol-token').description('one-time enrolment tokens for technicians (rc-provision init)');
  cmd
    .command('create')
    .description('create a one-time enrolment token; prints it alone on its line')
    .requiredOption('--kind <kind>', 'bus | turnstile | canteen | partner')
    .option('--school <id>', 'only for this school (turnstile, canteen)')
    .option('--route <r>', 'only for this route (bus)')
    .option('--partner <id>', 'only for this partner (partner)')
    .option('--ttl <duration>', 'valid for (e.g. 30m, 1h, 2d)', '1h')
    .option('--server <url>', 'sync-server HTTP API', DEFAULT_SERVER)
    .option('--json', 'machine-readable output: {"token":…}')
    .action(async (opts: { kind: string; school?: string; route?: string; partner?: string; ttl: string; server: string; json?: boolean }) => {
      try {
        const body = TokenCreateBody.safeParse({ kind: opts.kind, school: opts.school, route: opts.route, partner: opts.partner, ttlSec: parseTtl(opts.ttl) });
        if (!body.success)
          throw new RcError(ErrorCode.ServerBadRequest, body.error.issues.map((i) => `${i.path.join('.') || 'arguments'}: ${i.message}`).join('; '));
        const t = await callApi(opts.server, 'POST', '/v1/enrol-tokens', TokenCreated, body.data);
        if (opts.json) process.stdout.write(JSON.stringify(t) + '\n');
        else {
          process.stdout.write(`${t.token}\n`);
          process.stderr.write(
            `one-time token for a ${t.kind}${t.school ? ` of school ${t.school}` : ''}${t.route ? ` on route ${t.route}` : ''}${t.partner ? ` of partner ${t.partner}` : ''}, valid until ${t.expiresAt}\n`,
          );
        }
      } catch (e) {
        fail(e, opts.json === true);
      }
    });
}
