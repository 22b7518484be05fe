import { X509Certificate, randomBytes } from 'node:crypto';
import { BankId } from '../../protocol/bank-api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Db } from '../registry.js';
import { ensureBankCa, fingerprintOf, issueClientCert, loadBankCa } from './ca.js';

/**
 * The operator's side of the banks (rc-sync-server bank add|list|disable|enable|cert): local commands on the
 * registry file, like the account commands. A running server sees a change at the bank's next request
 * (certificates and the disabled flag are read per request).
 */
export interface BankRow {
  id: string;
  name: string;
  site: string | null;
  callback_url: string | null;
  callback_secret: string | null;
  since: string;
  disabled: number;
}

export interface BankCert {
  fingerprint: string;
  subject: string;
  notAfter: string;
  revokedAt: string | null;
}

export interface BankListed {
  id: string;
  name: string;
  site: string | null;
  callbackUrl: string | null;
  since: string;
  disabled: boolean;
  certs: BankCert[];
  /** Status callbacks not delivered yet (pending) and given up (failed). */
  outbox: { pending: number; failed: number };
}

const bad = (message: string, context: Record<string, unknown> = {}) => new RcError(ErrorCode.BankRegistry, message, context);

function checkUrl(u: string | undefined, what: string): string | null {
  if (u === undefined) return null;
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    throw bad(`${what} is not a URL: ${u}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad(`${what} must be https:// (http:// for tests on loopback): ${u}`);
  return url.toString();
}

export function getBank(db: Db, id: string): BankRow | undefined {
  return db.prepare('SELECT id, name, site, callback_url, callback_secret, since, disabled FROM banks WHERE id = ?').get(id) as BankRow | undefined;
}

/** Register a certificate for a bank: issued from the bank CA (trust_pem null) or brought by the bank (then trusted as given). */
function addCert(db: Db, bankId: string, certPem: string, trustPem: string | null, now: string): BankCert {
  let x: X509Certificate;
  try {
    x = new X509Certificate(certPem);
  } catch {
    throw bad('the certificate is not a PEM X.509 certificate');
  }
  if (x.ca) throw bad('a CA certificate is not a client certificate');
  const fingerprint = fingerprintOf(certPem);
  const taken = db.prepare('SELECT bank_id FROM bank_certs WHERE fingerprint = ?').pluck().get(fingerprint) as string | undefined;
  if (taken !== undefined) throw bad(`the certificate is registered already (bank ${taken})`, { fingerprint });
  const notAfter = new Date(x.validTo).toISOString();
  db.prepare('INSERT INTO bank_certs(fingerprint, bank_id, subject, not_after, trust_pem, added_at) VALUES (?,?,?,?,?,?)').run(
    fingerprint,
    bankId,
    x.subject.replaceAll('\n', ', '),
    notAfter,
    trustPem,
    now,
  );
  return { fingerprint, subject: x.subject.replaceAll('\n', ', '), notAfter, revokedAt: null };
}

export interface CertInput {
  /** A PEM certificate the bank brings (self-signed, or signed by `caPem`). */
  certPem?: string;
  /** The CA that signed the brought certificate (trusted by the bank listener). */
  caPem?: string;
  /** A CSR: the bank CA signs it. */
  csrPem?: string;
}

/** A certificate for the bank from one of: the bank's certificate, its CSR, or a key made here (answered once). */
function certFor(db: Db, dataDir: string, bankId: string, c: CertInput, now: string): { cert: BankCert; certPem: string; keyPem: string | null } {
  if (c.certPem !== undefined) {
    if (c.csrPem !== undefined) throw bad('give a certificate or a CSR, not both');
    const own = new X509Certificate(c.certPem);
    // self-signed: its own issuer, signed by its own key (checkIssued would also want keyCertSign, which a client certificate lacks)
    const selfSigned = own.subject === own.issuer && own.verify(own.publicKey);
    const issuer = c.caPem ?? (selfSigned ? c.certPem : undefined);
    const bankCa = loadBankCa(dataDir);
    const fromBankCa = bankCa !== null && own.checkIssued(new X509Certificate(bankCa.certPem)) && own.verify(new X509Certificate(bankCa.certPem).publicKey);
    if (!fromBankCa && issuer === undefined) throw bad('a certificate not issued by the bank CA needs its CA (--ca) unless it is self-signed');
    if (!fromBankCa && !own.verify(new X509Certificate(issuer!).publicKey)) throw bad('the certificate is not signed by the CA given');
    return { cert: addCert(db, bankId, c.certPem, fromBankCa ? null : issuer!, now), certPem: c.certPem, keyPem: null };
  }
  const ca = ensureBankCa(dataDir);
  const issued = issueClientCert(ca, bankId, c.csrPem !== undefined ? { csrPem: c.csrPem } : {});
  return { cert: addCert(db, bankId, issued.certPem, null, now), ...issued };
}

export interface AddedBank {
  id: string;
  fingerprint: string;
  /** The client certificate (PEM) and, when made here, its key: handed to the bank once, never kept by the server. */
  certPem: string;
  keyPem: string | null;
  /** The HMAC secret of the status callbacks (shown once; the bank keeps it). */
  callbackSecret: string | null;
  /** The bank CA certificate (what the server trusts), null when none was made. */
  bankCaPem: string | null;
}

export function addBank(
  db: Db,
  dataDir: string,
  o: { id: string; name: string; site?: string; callbackUrl?: string } & CertInput,
  now = new Date(),
): AddedBank {
  const id = BankId.safeParse(o.id);
  if (!id.success) throw bad(`not a bank id: ${o.id} (2-32 of a-z 0-9 -)`);
  if (!o.name.trim()) throw bad('a bank needs a name');
  const site = checkUrl(o.site, 'the site');
  const callbackUrl = checkUrl(o.callbackUrl, 'the callback URL');
  if (getBank(db, o.id)) throw bad(`bank ${o.id} exists already`, { bank: o.id });
  const secret = callbackUrl ? randomBytes(32).toString('base64url') : null;
  const at = now.toISOString();
  return db.transaction(() => {
    db.prepare('INSERT INTO banks(id, name, site, callback_url, callback_secret, since, disabled, updated_at) VALUES (?,?,?,?,?,?,0,?)').run(
      o.id,
      o.name.trim(),
      site,
      callbackUrl,
      secret,
      at.slice(0, 10),
      at,
    );
    const c = certFor(db, dataDir, o.id, o, at);
    return {
      id: o.id,
      fingerprint: c.cert.fingerprint,
      certPem: c.certPem,
      keyPem: c.keyPem,
      callbackSecret: secret,
      bankCaPem: loadBankCa(dataDir)?.certPem ?? null,
    };
  })();
}

/** Another certificate for a bank (rotation), or revoke one by fingerprint. */
export function addBankCert(db: Db, dataDir: string, bankId: string, c: CertInput, now = new Date()): AddedBank {
  if (!getBank(db, bankId)) throw bad(`no bank ${bankId}`, { bank: bankId });
  const r = db.transaction(() => certFor(db, dataDir, bankId, c, now.toISOString()))();
  return {
    id: bankId,
    fingerprint: r.cert.fingerprint,
    certPem: r.certPem,
    keyPem: r.keyPem,
    callbackSecret: null,
    bankCaPem: loadBankCa(dataDir)?.certPem ?? null,
  };
}

export function revokeBankCert(db: Db, bankId: string, fingerprint: string, now = new Date()): void {
  const n = db
    .prepare('UPDATE bank_certs SET revoked_at = ? WHERE bank_id = ? AND fingerprint = ? AND revoked_at IS NULL')
    .run(now.toISOString(), bankId, fingerprint.replaceAll(':', '').toLowerCase()).changes;
  if (n === 0) throw bad(`bank ${bankId} has no valid certificate ${fingerprint}`, { bank: bankId });
}

export function setBankDisabled(db: Db, bankId: string, disabled: boolean, now = new Date()): void {
  const n = db.prepare('UPDATE banks SET disabled = ?, updated_at = ? WHERE id = ?').run(disabled ? 1 : 0, now.toISOString(), bankId).changes;
  if (n === 0) throw bad(`no bank ${bankId}`, { bank: bankId });
}

export function listBanks(db: Db): BankListed[] {
  const banks = db.prepare('SELECT id, name, site, callback_url, callback_secret, since, disabled FROM banks ORDER BY id').all() as BankRow[];
  const certs = db.prepare('SELECT fingerprint, subject, not_after, revoked_at FROM bank_certs WHERE bank_id = ? ORDER BY added_at');
  const outbox = db.prepare(
    "SELECT count(CASE WHEN state = 'pending' THEN 1 END) AS pending, count(CASE WHEN state = 'failed' THEN 1 END) AS failed FROM bank_outbox WHERE bank_id = ?",
  );
  return banks.map((b) => {
    const o = outbox.get(b.id) as { pending: number | null; failed: number | null };
    return {
      id: b.id,
      name: b.name,
      site: b.site,
      callbackUrl: b.callback_url,
      since: b.since,
      disabled: b.disabled === 1,
      certs: (certs.all(b.id) as { fingerprint: string; subject: string; not_after: string; revoked_at: string | null }[]).map((c) => ({
        fingerprint: c.fingerprint,
        subject: c.subject,
        notAfter: c.not_after,
        revokedAt: c.revoked_at,
      })),
      outbox: { pending: o.pending ?? 0, failed: o.failed ?? 0 },
    };
  });
}

/** What the bank listener trusts: the bank CA and the CAs (or self-signed certificates) of certificates banks brought. */
export function bankTrust(db: Db, dataDir: string): string[] {
  const ca = loadBankCa(dataDir);
  const brought = db.prepare('SELECT DISTINCT trust_pem FROM bank_certs WHERE trust_pem IS NOT NULL AND revoked_at IS NULL').pluck().all() as string[];
  return [...(ca ? [ca.certPem] : []), ...brought];
}
