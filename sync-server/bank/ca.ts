import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { ecKey, opensslFailure, runOpenssl, selfSignedCa, signCsr } from '../openssl.js';

/**
 * The bank CA: a CA of its own, under DATA/bank-ca/, that signs the banks' client certificates.
 *
 * Not the server's TLS CA (`tls init`): that one's key is meant to be kept offline, and it is what devices pin;
 * a CA that only issues bank client certificates keeps the two apart (a device CA compromise does not let anyone
 * act as a bank, and the bank CA is trusted by the bank listener only). The CA alone is not enough either: a bank
 * is identified by its certificate's SHA-256 fingerprint, registered in bank_certs (banks.ts).
 * Like tls.ts, it uses Debian's `openssl` through openssl.ts (node:crypto cannot issue certificates). Keys 0600.
 */
export interface BankCa {
  dir: string;
  certFile: string;
  keyFile: string;
  certPem: string;
}

export const bankCaDir = (dataDir: string) => join(dataDir, 'bank-ca');

/** An openssl step; its failure is bank.registry `openssl failed: …` (the command missing, or what it said). */
function step(openssl: string, run: () => void): void {
  try {
    run();
  } catch (e) {
    throw new RcError(ErrorCode.BankRegistry, `openssl failed: ${opensslFailure(e, openssl)}`);
  }
}

/** The bank CA, read; null when none was made yet. */
export function loadBankCa(dataDir: string): BankCa | null {
  const dir = bankCaDir(dataDir);
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  if (!existsSync(certFile)) return null;
  return { dir, certFile, keyFile, certPem: readFileSync(certFile, 'utf8') };
}

/** The bank CA, made on first use (EC P-256, 10 years). */
export function ensureBankCa(dataDir: string, openssl = 'openssl'): BankCa {
  const have = loadBankCa(dataDir);
  if (have) return have;
  const dir = bankCaDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = mkdtempSync(join(dir, '.init-'));
  try {
    step(openssl, () => ecKey(openssl, join(tmp, 'ca.key')));
    step(openssl, () =>
      selfSignedCa(openssl, {
        keyFile: join(tmp, 'ca.key'),
        certFile: join(tmp, 'ca.crt'),
        days: '3650',
        subject: '/O=Resident Card/CN=Resident Card bank client CA',
      }),
    );
    renameSync(join(tmp, 'ca.key'), join(dir, 'ca.key'));
    renameSync(join(tmp, 'ca.crt'), join(dir, 'ca.crt'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return loadBankCa(dataDir)!;
}

/**
 * A client certificate for a bank, signed by the bank CA (extendedKeyUsage clientAuth, 825 days):
 * from the bank's CSR (its key never leaves the bank), or with a key made here (given to the bank once, 0600).
 */
export function issueClientCert(ca: BankCa, bankId: string, o: { csrPem?: string; openssl?: string } = {}): { certPem: string; keyPem: string | null } {
  const openssl = o.openssl ?? 'openssl';
  const tmp = mkdtempSync(join(ca.dir, '.issue-'));
  try {
    const csr = join(tmp, 'bank.csr');
    let keyPem: string | null = null;
    if (o.csrPem !== undefined) writeFileSync(csr, o.csrPem);
    else {
      step(openssl, () => ecKey(openssl, join(tmp, 'bank.key')));
      step(openssl, () => runOpenssl(openssl, ['req', '-new', '-key', join(tmp, 'bank.key'), '-out', csr, '-subj', `/O=Resident Card bank/CN=${bankId}`]));
      keyPem = readFileSync(join(tmp, 'bank.key'), 'utf8');
    }
    writeFileSync(join(tmp, 'ext.cnf'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
    step(openssl, () =>
      signCsr(openssl, { csr, caCert: ca.certFile, caKey: ca.keyFile, days: '825', extFile: join(tmp, 'ext.cnf'), out: join(tmp, 'bank.crt') }),
    );
    return { certPem: readFileSync(join(tmp, 'bank.crt'), 'utf8'), keyPem };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** A certificate's SHA-256 fingerprint as the registry keeps it: lower-case hex without separators. */
export function fingerprintOf(certPem: string): string {
  return normaliseFingerprint(new X509Certificate(certPem).fingerprint256);
}

export function normaliseFingerprint(f: string): string {
  return f.replaceAll(':', '').toLowerCase();
}
