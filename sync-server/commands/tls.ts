import type { Command } from 'commander';
import { tlsInit } from '../tls.js';
import { fail } from './client.js';

export function register(program: Command): void {
  const cmd = program.command('tls').description('TLS certificates for the broker (mqtts) and the enrolment listener (https)');
  cmd
    .command('init')
    .description('make a CA and a server certificate with openssl (tests and small sites); keys 0600, nothing overwritten')
    .requiredOption('--dir <dir>', 'where to write ca.crt, ca.key, server.crt, server.key')
    .requiredOption('--san <name...>', 'host names / IP addresses devices use to reach the server (one or more)')
    .option('--days <n>', 'CA validity in days (the server certificate: at most 825)', '3650')
    .option('--json', 'machine-readable output')
    .action((o: { dir: string; san: string[]; days: string; json?: boolean }) => {
      try {
        const r = tlsInit(o.dir, o.san, { days: Number(o.days) });
        if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
        else
          process.stdout.write(
            `CA ${r.caCert} (key ${r.caKey}: keep it offline), server ${r.cert} / ${r.key}\nCA pin ${r.caPin}\n` +
              `next: rc-sync-server start --tls-cert ${r.cert} --tls-key ${r.key} --tls-ca ${r.caCert} …\n`,
          );
      } catch (e) {
        fail(e, o.json === true);
      }
    });
}
