import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { ErrorCode, RcError } from '../protocol/errors.js';
import { certPin } from '../protocol/tls-pin.js';
import { ecKey, opensslFailure, runOpenssl, selfSignedCa, signCsr } from './openssl.js';

/**
 * TLS material of the sync-server (issue 13 item 9): the server certificate and
 * key its listeners present (embedded broker's mqtts, enrolment https), and the
 * CA that signed it, which devices pin. Read and checked once at start: a
 * missing, unreadable or mismatched file is server.tls-files, never a crash.
 */
export const TlsFiles = z.object({ cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1) }).strict();
export type TlsFiles = z.infer<typeof TlsFiles>;

export interface TlsMaterial {
  /** Server certificate (PEM, may be a chain) and its private key (PEM). */
  cert: string;
  key: string;
  /** What listeners present: the certificate followed by the CA, so a client can find the pinned CA in the chain. */
  chain: string;
  /** The CA certificate devices pin (PEM). */
  ca: string;
  /** certPin(ca): what the enrolment token carries. */
  caPin: string;
}

function read(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new RcError(ErrorCode.ServerTlsFiles, `cannot read the TLS ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { file, what });
  }
}

function x509(pem: string, file: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new RcError(ErrorCode.ServerTlsFiles, `the TLS ${what} ${file} is not a PEM certificate`, { file, what });
  }
}

/** Read and check a certificate, its key and the CA (the key belongs to the certificate, the CA signed it). */
export function loadTls(raw: unknown): TlsMaterial {
  const p = TlsFiles.safeParse(raw);
  if (!p.success) throw new RcError(ErrorCode.ServerTlsFiles, 'TLS needs a certificate, its key and the CA (--tls-cert, --tls-key, --tls-ca)', {});
  const f = p.data;
  const cert = read(f.cert, 'certificate');
  const key = read(f.key, 'key');
  const ca = read(f.ca, 'CA certificate');
  const leaf = x509(cert, f.cert, 'certificate');
  const caCert = x509(ca, f.ca, 'CA certificate');
  let keyObj;
  try {
    keyObj = createPrivateKey(key);
  } catch {
    throw new RcError(ErrorCode.ServerTlsFiles, `the TLS key ${f.key} is not a PEM private key (or it is encrypted)`, { file: f.key, what: 'key' });
  }
  if (!leaf.checkPrivateKey(keyObj))
    throw new RcError(ErrorCode.ServerTlsFiles, `the TLS key ${f.key} does not belong to the certificate ${f.cert}`, { file: f.key });
  if (!leaf.checkIssued(caCert) || !leaf.verify(caCert.publicKey))
    throw new RcError(ErrorCode.ServerTlsFiles, `the certificate ${f.cert} is not signed by the CA ${f.ca}`, { file: f.cert, ca: f.ca });
  if (!caCert.ca) throw new RcError(ErrorCode.ServerTlsFiles, `${f.ca} is not a CA certificate (basicConstraints CA:TRUE)`, { file: f.ca });
  const caPin = certPin(ca);
  const chain = cert.includes(ca.trim()) ? cert : `${cert.trimEnd()}\n${ca.trimEnd()}\n`;
  return { cert, key, ca, chain, caPin };
}

export interface TlsInitResult {
  dir: string;
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
  caPin: string;
}

/**
 * rc-sync-server tls init: a CA and a server certificate for the names given, for tests and small sites.
 * node:crypto can make keys but cannot issue X.509 certificates, so Debian's `openssl` command does it (openssl.ts).
 * Keys are written 0600; nothing existing is overwritten.
 */
export function tlsInit(dir: string, names: readonly string[], opts: { days?: number; openssl?: string } = {}): TlsInitResult {
  if (names.length === 0) throw new RcError(ErrorCode.ServerTlsInit, 'tls init needs at least one --san (host name or IP address devices use)', {});
  for (const n of names)
    if (!isIP(n) && !/^(?=.{1,253}$)[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(n))
      throw new RcError(ErrorCode.ServerTlsInit, `not a host name or IP address: ${n}`, { san: n });
  const out = { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
  for (const f of Object.values(out)) if (existsSync(f)) throw new RcError(ErrorCode.ServerTlsInit, `${f} exists already: not overwritten`, { file: f });
  const openssl = opts.openssl ?? 'openssl';
  let tmp: string | null = null;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    tmp = mkdtempSync(join(dir, '.tls-init-'));
    const t = (n: string) => join(tmp!, n);
    const san = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    ecKey(openssl, t('ca.key'));
    ecKey(openssl, t('server.key'));
    const days = String(opts.days ?? 3650);
    selfSignedCa(openssl, { keyFile: t('ca.key'), certFile: t('ca.crt'), days, subject: '/O=Resident Card/CN=Resident Card operator CA' });
    runOpenssl(openssl, ['req', '-new', '-key', t('server.key'), '-out', t('server.csr'), '-subj', `/O=Resident Card/CN=${names[0]}`]);
    writeFileSync(t('ext.cnf'), `subjectAltName=${san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
    signCsr(openssl, {
      csr: t('server.csr'),
      caCert: t('ca.crt'),
      caKey: t('ca.key'),
      days: String(Math.min(Number(days), 825)),
      extFile: t('ext.cnf'),
      out: t('server.crt'),
    });
    renameSync(t('ca.key'), out.caKey);
    renameSync(t('server.key'), out.key);
    renameSync(t('ca.crt'), out.caCert);
    renameSync(t('server.crt'), out.cert);
  } catch (e) {
    if (e instanceof RcError) throw e;
    throw new RcError(ErrorCode.ServerTlsInit, `cannot make the certificates: ${opensslFailure(e, openssl)}`, { dir });
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
  return { dir, ...out, caPin: loadTls({ cert: out.cert, key: out.key, ca: out.caCert }).caPin };
}
