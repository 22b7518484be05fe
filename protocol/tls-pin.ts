import { X509Certificate, createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * Pinning the operator's CA (issue 13 item 9). A pin is the SHA-256 of the CA
 * certificate's DER, base64url (43 characters). The enrolment token carries
 * it (`rce_<32>.<pin>`), so the technician's tool trusts the enrolment
 * listener the first time without any other channel; the enrolment answer then
 * hands the device the broker's CA certificate, which it keeps in its config.
 */

/** A certificate in PEM, one or more (a chain), bounded. */
export const CertPem = z
  .string()
  .max(16_384)
  .regex(/^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?/, 'a PEM certificate');

/** The pin of a certificate given as DER or PEM. */
export function certPin(cert: Buffer | string): string {
  const der = typeof cert === 'string' ? new X509Certificate(cert).raw : cert;
  return createHash('sha256').update(der).digest('base64url');
}

/** A DER certificate as PEM. */
export function derToPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64.endsWith('\n') ? b64 : b64 + '\n'}-----END CERTIFICATE-----\n`;
}

/** An enrolment token as the operator hands it out: the one-time token, and the CA pin when enrolment runs over TLS. */
export function splitEnrolToken(s: string): { token: string; pin: string | null } {
  const i = s.indexOf('.');
  return i < 0 ? { token: s, pin: null } : { token: s.slice(0, i), pin: s.slice(i + 1) };
}
