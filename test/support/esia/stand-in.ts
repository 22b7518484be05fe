import { createPublicKey, randomBytes, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { exportJWK, exportSPKI, generateKeyPair, jwtVerify, SignJWT, type CryptoKey } from 'jose';

/**
 * An ESIA stand-in for tests (the real test stand is reachable only from Russia with a registered system). It serves
 * ESIA's endpoints as sync-server/cabinet/esia.ts uses them and checks what ESIA checks:
 *  - GET  /aas/oauth2/v2/ac: the client_secret is a signature over client_id + scope + timestamp + state + redirect_uri by
 *    the registered client's key (RSA/ECDSA with SHA-256, or Ed25519), the timestamp within an hour, the redirect_uri the
 *    registered one; then a sign-in page: pick one of the fixture persons and submit (a browser test drives it);
 *  - POST /aas/oauth2/v2/ac/login (form): issues a code (one use, 5 minutes) and redirects to redirect_uri?code&state;
 *  - POST /aas/oauth2/v3/te (form): the client_secret over client_id + scope + timestamp + state + redirect_uri + code;
 *    answers a JWT access token and id_token (RS256, its own key; `urn:esia:sbj_id` = oid, nonce) — invalid_client for a
 *    bad signature, invalid_grant for an unknown, used or expired code;
 *  - GET  /rs/prns/:oid with the access token: the person's data; GET /jwks: its public key.
 * `mode` makes it misbehave on purpose: a forged id_token (signed by another key), or "down" (500 on the token endpoint).
 */
export interface EsiaPerson {
  oid: string;
  firstName: string;
  lastName: string;
  middleName?: string;
  /** As ESIA writes it: 123-456-789 01. */
  snils?: string;
}

export const ESIA_PERSONS: readonly EsiaPerson[] = [
  { oid: '1000001', lastName: 'Очирова', firstName: 'Байрта', middleName: 'Сергеевна', snils: '112-233-445 95' },
  { oid: '1000002', lastName: 'Бадмаев', firstName: 'Санал', middleName: 'Петрович', snils: '123-456-789 64' },
  { oid: '1000003', lastName: 'Иванова', firstName: 'Анна' },
];

export interface EsiaStandIn {
  url: string;
  clientId: string;
  redirectUri: string;
  /** Its token-signing public key (PEM), for the client's `verify.publicKey`. */
  publicKeyPem: string;
  mode: { forgeIdToken: boolean; down: boolean };
  /** Codes issued and tokens answered, for assertions. */
  stats: { codes: number; tokens: number; refusals: string[] };
  close(): Promise<void>;
}

interface Pending {
  redirectUri: string;
  state: string;
  nonce: string;
  scope: string;
}
interface Code {
  oid: string;
  nonce: string;
  redirectUri: string;
  expires: number;
  used: boolean;
}

function verifySecret(key: KeyObject, data: string, secret: string): boolean {
  const sig = Buffer.from(secret.replace(/=+$/, ''), 'base64url');
  const alg = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  try {
    return sig.length > 0 && cryptoVerify(alg, Buffer.from(data, 'utf8'), key, sig);
  } catch {
    return false;
  }
}

/** ESIA's timestamp (yyyy.MM.dd HH:mm:ss Z) → ms. */
function parseTimestamp(t: string): number {
  const m = /^(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(t);
  if (!m) return NaN;
  const off = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9])) * 60_000;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) - off;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export async function startEsiaStandIn(o: {
  clientId: string;
  clientPublicKeyPem: string;
  redirectUri: string;
  persons?: readonly EsiaPerson[];
}): Promise<EsiaStandIn> {
  const persons = o.persons ?? ESIA_PERSONS;
  const clientKey = createPublicKey(o.clientPublicKeyPem);
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const forger = await generateKeyPair('RS256');
  const pending = new Map<string, Pending>();
  const codes = new Map<string, Code>();
  const mode = { forgeIdToken: false, down: false };
  const stats = { codes: 0, tokens: 0, refusals: [] as string[] };
  const app: FastifyInstance = Fastify({ logger: false });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
    done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );
  let base = '';
  const refuse = (status: number, error: string, description: string) => {
    stats.refusals.push(error);
    return { status, body: { error, error_description: description } };
  };

  app.get('/aas/oauth2/v2/ac', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const need = ['client_id', 'client_secret', 'redirect_uri', 'scope', 'response_type', 'state', 'timestamp'] as const;
    for (const k of need) if (!q[k]) return reply.code(400).send(refuse(400, 'invalid_request', `ESIA-007002: ${k} missing`).body);
    if (q.client_id !== o.clientId) return reply.code(400).send(refuse(400, 'invalid_client', 'ESIA-007004: unknown client').body);
    if (q.redirect_uri !== o.redirectUri) return reply.code(400).send(refuse(400, 'invalid_request', 'ESIA-007014: redirect_uri not registered').body);
    if (Math.abs(Date.now() - parseTimestamp(q.timestamp!)) > 3600_000)
      return reply.code(400).send(refuse(400, 'invalid_request', 'ESIA-007005: bad timestamp').body);
    if (!verifySecret(clientKey, `${q.client_id}${q.scope}${q.timestamp}${q.state}${q.redirect_uri}`, q.client_secret!))
      return reply.code(400).send(refuse(400, 'invalid_client', 'ESIA-007012: client_secret signature does not verify').body);
    const id = randomBytes(12).toString('hex');
    pending.set(id, { redirectUri: q.redirect_uri!, state: q.state!, nonce: q.nonce ?? '', scope: q.scope! });
    const options = persons.map((p) => `<option value="${esc(p.oid)}">${esc(`${p.lastName} ${p.firstName}`)} (${esc(p.oid)})</option>`).join('');
    return reply
      .type('text/html; charset=utf-8')
      .send(
        `<!doctype html><meta charset="utf-8"><title>ESIA stand-in</title><h1>Госуслуги (stand-in)</h1>` +
          `<form method="post" action="/aas/oauth2/v2/ac/login"><input type="hidden" name="request" value="${id}">` +
          `<label>Person <select name="oid">${options}</select></label> <button type="submit" name="action" value="allow">Войти</button>` +
          ` <button type="submit" name="action" value="deny">Отказать</button></form>`,
      );
  });

  app.post('/aas/oauth2/v2/ac/login', async (req, reply) => {
    const b = req.body as Record<string, string | undefined>;
    const p = pending.get(b.request ?? '');
    if (!p) return reply.code(400).send({ error: 'invalid_request', error_description: 'no such sign-in' });
    pending.delete(b.request!);
    const back = new URL(p.redirectUri);
    back.searchParams.set('state', p.state);
    if (b.action === 'deny' || !persons.some((x) => x.oid === b.oid)) {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'ESIA-007007: the person refused');
      return reply.redirect(back.toString(), 302);
    }
    const code = randomBytes(24).toString('base64url');
    codes.set(code, { oid: b.oid!, nonce: p.nonce, redirectUri: p.redirectUri, expires: Date.now() + 5 * 60_000, used: false });
    stats.codes++;
    back.searchParams.set('code', code);
    return reply.redirect(back.toString(), 302);
  });

  app.post('/aas/oauth2/v3/te', async (req, reply) => {
    if (mode.down) return reply.code(500).send('internal error');
    const b = (req.body ?? {}) as Record<string, string | undefined>;
    const send = (r: { status: number; body: unknown }) => reply.code(r.status).send(r.body);
    if (b.client_id !== o.clientId) return send(refuse(400, 'invalid_client', 'ESIA-007004: unknown client'));
    if (!b.code || !b.client_secret || !b.timestamp || !b.state || !b.scope || !b.redirect_uri)
      return send(refuse(400, 'invalid_request', 'ESIA-007002: parameter missing'));
    if (!verifySecret(clientKey, `${b.client_id}${b.scope}${b.timestamp}${b.state}${b.redirect_uri}${b.code}`, b.client_secret))
      return send(refuse(400, 'invalid_client', 'ESIA-007012: client_secret signature does not verify'));
    if (b.grant_type !== 'authorization_code') return send(refuse(400, 'unsupported_grant_type', 'ESIA-007003'));
    const c = codes.get(b.code);
    if (!c || c.used || c.expires < Date.now() || c.redirectUri !== b.redirect_uri) {
      // a replayed code: the grant is dead
      if (c) c.used = true;
      return send(refuse(400, 'invalid_grant', 'ESIA-007009: the code is unknown, used or expired'));
    }
    c.used = true;
    const now = Math.floor(Date.now() / 1000);
    const claims = { 'urn:esia:sbj_id': Number(c.oid), 'urn:esia:sid': randomBytes(8).toString('hex') };
    const jwt = (extra: Record<string, unknown>, key: CryptoKey) =>
      new SignJWT({ ...claims, ...extra })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
        .setIssuer(`${base}/`)
        .setAudience(o.clientId)
        .setSubject(c.oid)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + 3600)
        .sign(key);
    stats.tokens++;
    return reply.send({
      access_token: await jwt({ scope: b.scope }, privateKey),
      id_token: await jwt({ nonce: c.nonce, amr: 'PWD' }, mode.forgeIdToken ? forger.privateKey : privateKey),
      token_type: 'Bearer',
      expires_in: 3600,
      state: b.state,
    });
  });

  app.get('/rs/prns/:oid', async (req, reply) => {
    const { oid } = req.params as { oid: string };
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    try {
      if (!m) throw new Error('no token');
      const { payload } = await jwtVerify(m[1]!, publicKey, { issuer: `${base}/`, audience: o.clientId });
      if (String(payload['urn:esia:sbj_id']) !== oid) throw new Error('another person');
    } catch {
      return reply.code(401).send({ code: 'ESIA-005011', message: 'access token not valid for this person' });
    }
    const p = persons.find((x) => x.oid === oid);
    if (!p) return reply.code(404).send({ code: 'ESIA-005001' });
    return reply.send({
      firstName: p.firstName,
      lastName: p.lastName,
      ...(p.middleName ? { middleName: p.middleName } : {}),
      ...(p.snils ? { snils: p.snils } : {}),
      trusted: true,
      stateFacts: ['EntityRoot'],
    });
  });

  app.get('/jwks', async () => ({ keys: [{ ...(await exportJWK(publicKey)), alg: 'RS256', use: 'sig' }] }));

  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return {
    url: base,
    clientId: o.clientId,
    redirectUri: o.redirectUri,
    publicKeyPem: await exportSPKI(publicKey),
    mode,
    stats,
    close: () => app.close(),
  };
}
