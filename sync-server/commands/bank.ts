import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { addBank, addBankCert, listBanks, revokeBankCert, setBankDisabled, type AddedBank, type CertInput } from '../bank/banks.js';
import type { Db } from '../registry.js';
import { DEFAULT_DATA_DIR, fail } from './client.js';
import { databaseOption, openCommandRegistry, type RegistryOpts } from './database.js';

/**
 * rc-sync-server bank add|list|disable|enable|cert: the banks that connect cards over the bank API (sync-server/bank/,
 * docs/bank-api.md). Local commands on the registry of --data (or --database); a running server sees changes at the bank's next request.
 */
function withDb<T>(o: RegistryOpts, f: (db: Db) => T): T {
  const db = openCommandRegistry(o);
  try {
    return f(db);
  } finally {
    db.close();
  }
}

type Common = RegistryOpts & { json?: boolean };
type CertOpts = { cert?: string; ca?: string; csr?: string; out?: string };
const dataOpt = (c: Command) =>
  databaseOption(c.option('--data <dir>', 'data directory (registry, bank CA)', DEFAULT_DATA_DIR)).option('--json', 'machine-readable output');
const certOpts = (c: Command) =>
  c
    .option('--cert <file>', "the bank's own client certificate (PEM): self-signed, or signed by --ca")
    .option('--ca <file>', 'the CA that signed --cert (a running bank listener trusts it within seconds)')
    .option('--csr <file>', "the bank's certificate request (PEM): the bank CA signs it, the key stays with the bank")
    .option('--out <dir>', 'where to write <id>.crt (and <id>.key when made here, 0600) and bank-ca.crt', '.');

const certInput = (o: CertOpts): CertInput => ({
  ...(o.cert ? { certPem: readFileSync(o.cert, 'utf8') } : {}),
  ...(o.ca ? { caPem: readFileSync(o.ca, 'utf8') } : {}),
  ...(o.csr ? { csrPem: readFileSync(o.csr, 'utf8') } : {}),
});

/** Write what the bank gets: its certificate, the key when made here (0600), the bank CA. */
function handOver(r: AddedBank, o: CertOpts & Common): Record<string, string> {
  const files: Record<string, string> = {};
  if (o.cert) return files;
  mkdirSync(o.out ?? '.', { recursive: true });
  const f = (n: string) => join(o.out ?? '.', n);
  writeFileSync(f(`${r.id}.crt`), r.certPem);
  files.cert = f(`${r.id}.crt`);
  if (r.keyPem) {
    writeFileSync(f(`${r.id}.key`), r.keyPem, { mode: 0o600 });
    chmodSync(f(`${r.id}.key`), 0o600);
    files.key = f(`${r.id}.key`);
  }
  if (r.bankCaPem) {
    writeFileSync(f('bank-ca.crt'), r.bankCaPem);
    files.bankCa = f('bank-ca.crt');
  }
  return files;
}

export function register(program: Command): void {
  const bank = program.command('bank').description('banks connecting cards over the bank API (mutual TLS): add, list, disable, enable, cert');
  certOpts(dataOpt(bank.command('add <id>').description('register a bank: issues its client certificate from the bank CA (or registers --cert / signs --csr)')))
    .requiredOption('--name <name>', "the bank's name as the public banks list shows it")
    .option('--site <url>', "the bank's site (public banks list)")
    .option('--callback <url>', 'status callbacks: POSTed here, signed with a secret shown once')
    .action((id: string, o: Common & CertOpts & { name: string; site?: string; callback?: string }) => {
      try {
        const r = withDb(o, (db) =>
          addBank(db, o.data, { id, name: o.name, ...(o.site ? { site: o.site } : {}), ...(o.callback ? { callbackUrl: o.callback } : {}), ...certInput(o) }),
        );
        const files = handOver(r, o);
        if (o.json) process.stdout.write(JSON.stringify({ id: r.id, fingerprint: r.fingerprint, callbackSecret: r.callbackSecret, files }) + '\n');
        else
          process.stdout.write(
            `bank ${r.id} added; certificate SHA-256 ${r.fingerprint}\n` +
              Object.entries(files)
                .map(([k, v]) => `  ${k}: ${v}\n`)
                .join('') +
              (r.callbackSecret ? `callback secret (shown once, give it to the bank): ${r.callbackSecret}\n` : ''),
          );
      } catch (e) {
        fail(e, o.json === true);
      }
    });
  dataOpt(bank.command('list').description('banks, their certificates (fingerprints, revoked) and undelivered callbacks')).action((o: Common) => {
    try {
      const banks = withDb(o, (db) => listBanks(db));
      if (o.json) process.stdout.write(JSON.stringify({ banks }) + '\n');
      else
        for (const b of banks)
          process.stdout.write(
            `${b.id}\t${b.name}${b.disabled ? '\tDISABLED' : ''}\tsince ${b.since}\tcallback ${b.callbackUrl ?? '-'}\tpending ${b.outbox.pending} failed ${b.outbox.failed}\n` +
              b.certs.map((c) => `  ${c.fingerprint}\t${c.subject}\tuntil ${c.notAfter}${c.revokedAt ? `\trevoked ${c.revokedAt}` : ''}\n`).join(''),
          );
    } catch (e) {
      fail(e, o.json === true);
    }
  });
  for (const [name, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const)
    dataOpt(
      bank.command(`${name} <id>`).description(disabled ? "refuse the bank's requests (401 bank.disabled) from its next request" : 'accept the bank again'),
    ).action((id: string, o: Common) => {
      try {
        withDb(o, (db) => setBankDisabled(db, id, disabled));
        process.stdout.write(o.json ? JSON.stringify({ id, disabled }) + '\n' : `bank ${id} ${disabled ? 'disabled' : 'enabled'}\n`);
      } catch (e) {
        fail(e, o.json === true);
      }
    });
  certOpts(dataOpt(bank.command('cert <id>').description('another client certificate for the bank (rotation), or --revoke one by its fingerprint')))
    .option('--revoke <sha256>', 'revoke this certificate (its SHA-256 fingerprint, as bank list shows it)')
    .action((id: string, o: Common & CertOpts & { revoke?: string }) => {
      try {
        if (o.revoke) {
          withDb(o, (db) => revokeBankCert(db, id, o.revoke!));
          process.stdout.write(o.json ? JSON.stringify({ id, revoked: o.revoke }) + '\n' : `certificate ${o.revoke} of bank ${id} revoked\n`);
          return;
        }
        const r = withDb(o, (db) => addBankCert(db, o.data, id, certInput(o)));
        const files = handOver(r, o);
        process.stdout.write(
          o.json ? JSON.stringify({ id, fingerprint: r.fingerprint, files }) + '\n' : `bank ${id}: certificate SHA-256 ${r.fingerprint} added\n`,
        );
      } catch (e) {
        fail(e, o.json === true);
      }
    });
}
