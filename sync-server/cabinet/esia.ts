import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, importSPKI, importX509, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type CryptoKey } from 'jose';
import { z } from 'zod';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { why, type EsiaConfig, type IdentityProvider, type LoginChecks } from './provider.js';
import type { Signer } from './signer.js';

/**
 * The ESIA (Gosuslugi) sign-in, as its "Методические рекомендации по использованию ЕСИА" describe the v2/v3 OAuth
 * endpoints (cross-checked with the ofstudio/go-api-epgu client):
 *  - authorization: GET {base}/aas/oauth2/v2/ac with client_id, client_secret, redirect_uri, scope, response_type=code,
 *    state (a UUID), timestamp, access_type=online, client_certificate_hash (when configured) and our nonce;
 *  - client_secret on v2/ac: the detached signature over client_id + scope + timestamp + state + redirect_uri (plain
 *    concatenation, UTF-8), base64url; timestamp `yyyy.MM.dd HH:mm:ss Z` (e.g. `2026.12.02 03:40:00 +0000`);
 *  - token: POST {base}/aas/oauth2/v3/te (form) with client_id, code, grant_type=authorization_code, redirect_uri, scope,
 *    a fresh state and timestamp, token_type=Bearer, and client_secret signed over client_id + scope + timestamp + state
 *    + redirect_uri + code;
 *  - the answer's id_token (and the access token, a JWT too) are verified with jose against ESIA's published key (a
 *    configured PEM/certificate or JWKS): signature, issuer, audience = client_id, lifetime, and our nonce; the oid is
 *    `urn:esia:sbj_id` (else `sub`);
 *  - person data: GET {base}/rs/prns/{oid} with the access token: firstName, lastName, middleName, snils.
 * The signature algorithm is whatever the Signer makes (GOST R 34.10-2012 in production through an external command);
 * the tokens live only in this call: nothing of them is stored.
 */
const TokenAnswer = z.object({
  access_token: z.string().min(1),
  id_token: z.string().min(1),
  token_type: z.string().optional(),
  expires_in: z.number().optional(),
});
const Person = z.object({
  firstName: z.string().optional(),
  lastName: z.string().optional(),
  middleName: z.string().optional(),
  snils: z.string().optional(),
});

/** ESIA's timestamp: yyyy.MM.dd HH:mm:ss Z (UTC, +0000). */
export function esiaTimestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}.${p(d.getUTCMonth() + 1)}.${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** SNILS as 11 digits (ESIA writes 123-456-789 01). */
export const snilsDigits = (s: string | undefined): string | undefined => {
  const d = s?.replace(/\D/g, '');
  return d && d.length === 11 ? d : undefined;
};

async function verifyKey(c: EsiaConfig): Promise<CryptoKey | JWTVerifyGetKey> {
  if ('jwksUrl' in c.verify) return createRemoteJWKSet(new URL(c.verify.jwksUrl));
  const pem = c.verify.publicKey.includes('-----BEGIN') ? c.verify.publicKey : readFileSync(c.verify.publicKey, 'utf8');
  try {
    // the algorithm of the key decides; jose needs one named for PEM import
    const alg = 'RS256';
    return pem.includes('BEGIN CERTIFICATE') ? await importX509(pem, alg) : await importSPKI(pem, alg);
  } catch (e) {
    throw new RcError(ErrorCode.CabinetProviderConfig, "ESIA's public key is not a readable RSA PEM key or certificate", { cause: why(e) });
  }
}

export async function esiaProvider(c: EsiaConfig, signer: Signer, now: () => Date = () => new Date()): Promise<IdentityProvider> {
  const base = c.baseUrl.replace(/\/+$/, '');
  const issuer = c.issuer ?? `${base}/`;
  const key = await verifyKey(c);
  const secret = async (...parts: string[]) => {
    try {
      return (await signer.sign(Buffer.from(parts.join(''), 'utf8'))).toString('base64url');
    } catch (e) {
      if (e instanceof RcError) throw e;
      throw new RcError(ErrorCode.CabinetSignerFailed, 'the client_secret could not be signed', { cause: why(e) });
    }
  };
  const call = async (url: string, init: RequestInit): Promise<Response> => {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(c.timeoutMs), redirect: 'manual' });
    } catch (e) {
      throw new RcError(ErrorCode.CabinetProviderDown, 'ESIA did not answer', { url: url.split('?')[0], cause: why(e) });
    }
  };
  const verify = async (jwt: string, what: string): Promise<JWTPayload> => {
    try {
      const { payload } = await jwtVerify(jwt, key as CryptoKey, { issuer, audience: c.clientId, currentDate: now(), clockTolerance: 60 });
      return payload;
    } catch (e) {
      throw new RcError(ErrorCode.CabinetBadIdToken, `ESIA's ${what} did not verify`, { cause: why(e) });
    }
  };
  return {
    kind: 'esia',
    async authorizationUrl(l: LoginChecks) {
      const timestamp = esiaTimestamp(now());
      const q = new URLSearchParams({
        client_id: c.clientId,
        client_secret: await secret(c.clientId, c.scope, timestamp, l.state, c.redirectUri),
        redirect_uri: c.redirectUri,
        scope: c.scope,
        response_type: 'code',
        state: l.state,
        timestamp,
        access_type: 'online',
        nonce: l.nonce,
        ...(c.certHash ? { client_certificate_hash: c.certHash } : {}),
      });
      return `${base}/aas/oauth2/v2/ac?${q.toString()}`;
    },
    async identify(query, l) {
      const code = query['code'];
      if (!code) throw new RcError(ErrorCode.CabinetCodeRejected, 'ESIA sent no authorization code');
      const timestamp = esiaTimestamp(now());
      const state = randomUUID();
      const form = new URLSearchParams({
        client_id: c.clientId,
        code,
        grant_type: 'authorization_code',
        client_secret: await secret(c.clientId, c.scope, timestamp, state, c.redirectUri, code),
        state,
        redirect_uri: c.redirectUri,
        scope: c.scope,
        timestamp,
        token_type: 'Bearer',
        ...(c.certHash ? { client_certificate_hash: c.certHash } : {}),
      });
      const r = await call(`${base}/aas/oauth2/v3/te`, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      const body: unknown = await r.json().catch(() => null);
      if (r.status >= 500 || body === null)
        throw new RcError(ErrorCode.CabinetProviderDown, 'ESIA answered the token request with an error', { status: r.status });
      if (r.status >= 400) {
        const err = z.object({ error: z.string().optional(), error_description: z.string().optional() }).safeParse(body);
        const e = err.success ? (err.data.error ?? '') : '';
        const d = err.success ? (err.data.error_description ?? '').slice(0, 200) : '';
        // invalid_client: our signature, client id or certificate; anything else about the grant: the code
        if (e === 'invalid_client' || e === 'unauthorized_client')
          throw new RcError(ErrorCode.CabinetClientRejected, 'ESIA refused our client credentials', { error: e, description: d });
        throw new RcError(ErrorCode.CabinetCodeRejected, 'ESIA refused the authorization code', { error: e, description: d });
      }
      const t = TokenAnswer.safeParse(body);
      if (!t.success) throw new RcError(ErrorCode.CabinetProviderDown, 'ESIA answered the token request without the tokens');
      const id = await verify(t.data.id_token, 'id_token');
      if (id['nonce'] !== l.nonce) throw new RcError(ErrorCode.CabinetBadIdToken, "ESIA's id_token is not for this sign-in (nonce)");
      const oid = String(id['urn:esia:sbj_id'] ?? id.sub ?? '');
      if (!/^\d{1,20}$/.test(oid)) throw new RcError(ErrorCode.CabinetBadIdToken, "ESIA's id_token names no person (oid)");
      const at = await verify(t.data.access_token, 'access token');
      if (String(at['urn:esia:sbj_id'] ?? at.sub ?? '') !== oid) throw new RcError(ErrorCode.CabinetBadIdToken, "ESIA's access token is for another person");
      const pr = await call(`${base}/rs/prns/${oid}`, { headers: { authorization: `Bearer ${t.data.access_token}`, accept: 'application/json' } });
      const pb: unknown = await pr.json().catch(() => null);
      const p = Person.safeParse(pb);
      if (pr.status !== 200 || !p.success) throw new RcError(ErrorCode.CabinetProviderDown, "ESIA did not give the person's data", { status: pr.status });
      const name = [p.data.lastName, p.data.firstName, p.data.middleName].filter(Boolean).join(' ') || `ESIA ${oid}`;
      const snils = snilsDigits(p.data.snils);
      return { subject: `esia:${oid}`, name, esia: true, ...(snils ? { snils } : {}) };
    },
  };
}
