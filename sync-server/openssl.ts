import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync } from 'node:fs';

/**
 * Debian's `openssl` command, for what node:crypto cannot do: issue X.509 certificates. Used by the server's TLS CA
 * (`tls init`, tls.ts) and the bank client CA (bank/ca.ts); each says in its own error what failed.
 */

/** Why an openssl run failed, in one line: the command missing, else the first line it wrote to stderr. */
export function opensslFailure(e: unknown, openssl: string): string {
  const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
  return err.code === 'ENOENT' ? `${openssl} not found` : (err.stderr?.toString().trim().split('\n')[0] ?? err.message);
}

/** Run `openssl args…` (stdout ignored, stderr kept for opensslFailure); throws what execFileSync throws. */
export function runOpenssl(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A certificate serial: 128 random bits as hex, the top bit clear so it stays positive. */
export const certSerial = (): string =>
  '0x' +
  randomBytes(16)
    .toString('hex')
    .replace(/^[89a-f]/, '1');

/** A new EC P-256 private key in `file`, readable by its owner only. */
export function ecKey(command: string, file: string): void {
  runOpenssl(command, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file]);
  chmodSync(file, 0o600);
}

/** A self-signed CA certificate for `keyFile` that signs end certificates only (pathlen 0). */
export function selfSignedCa(command: string, o: { keyFile: string; certFile: string; days: string; subject: string }): void {
  runOpenssl(command, [
    'req',
    '-x509',
    '-new',
    '-key',
    o.keyFile,
    '-out',
    o.certFile,
    '-days',
    o.days,
    '-subj',
    o.subject,
    '-set_serial',
    certSerial(),
    '-addext',
    'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/** An end certificate from `csr`, signed by the CA, with the extensions in `extFile`. */
export function signCsr(command: string, o: { csr: string; caCert: string; caKey: string; days: string; extFile: string; out: string }): void {
  runOpenssl(command, [
    'x509',
    '-req',
    '-in',
    o.csr,
    '-CA',
    o.caCert,
    '-CAkey',
    o.caKey,
    '-set_serial',
    certSerial(),
    '-days',
    o.days,
    '-extfile',
    o.extFile,
    '-out',
    o.out,
  ]);
}
