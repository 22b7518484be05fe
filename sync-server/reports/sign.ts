import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { ReportDoc, canonicalJson } from '../../protocol/reports.js';

/**
 * A report's signature: SHA-256 of the canonical JSON of the document without `signature`, signed
 * (Ed25519) by the server's key; the public key travels with it. `verifyReport` recomputes both, and
 * with `trustedPem` also insists on the operator's published key, so a carrier can check that the
 * numbers it is paid on were not changed.
 */
export function contentSha256(doc: ReportDoc): string {
  const { signature: _omit, ...content } = doc;
  return createHash('sha256').update(canonicalJson(content), 'utf8').digest('hex');
}

export function signReport(doc: ReportDoc, privateKey: KeyObject, publicKeyPem: string): ReportDoc {
  const sha256 = contentSha256(doc);
  const sig = sign(null, Buffer.from(sha256, 'hex'), privateKey).toString('base64');
  return { ...doc, signature: { alg: 'ed25519', sha256, sig, publicKeyPem } };
}

const bad = (why: string, context: Record<string, unknown> = {}) => new RcError(ErrorCode.ReportSignatureInvalid, why, context);

/** Check a report (parsed JSON); returns it and its hash, or throws report.signature-invalid saying why. */
export function verifyReport(raw: unknown, trustedPem?: string): { doc: ReportDoc; sha256: string } {
  const p = ReportDoc.safeParse(raw);
  if (!p.success) throw bad('not a report document', { issues: p.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`) });
  const doc = p.data;
  if (!doc.signature) throw bad('the report is not signed');
  const sha256 = contentSha256(doc);
  if (sha256 !== doc.signature.sha256)
    throw bad('the content does not match its SHA-256: the report was changed', { expected: doc.signature.sha256, actual: sha256 });
  let key: KeyObject;
  try {
    key = createPublicKey(doc.signature.publicKeyPem);
  } catch {
    throw bad('the public key in the report is not a key');
  }
  if (trustedPem !== undefined && !key.equals(createPublicKey(trustedPem))) throw bad('the report is signed by another key than the trusted one');
  let ok: boolean;
  try {
    ok = verify(null, Buffer.from(sha256, 'hex'), key, Buffer.from(doc.signature.sig, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw bad('the signature does not verify');
  return { doc, sha256 };
}
