/**
 * Issue 15 item 1: the plain OpenID Connect adapter (sync-server/cabinet/oidc.ts, openid-client) against a real OpenID
 * provider (oidc-provider with its development sign-in pages): code flow with PKCE, state and nonce, the id_token verified,
 * the identity mapped; a tampered state and a replayed code are refused with their codes.
 */
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { oidcProvider } from '../../sync-server/cabinet/oidc.js';
import type { IdentityProvider, LoginChecks } from '../../sync-server/cabinet/provider.js';
import { OidcConfig } from '../../sync-server/cabinet/provider.js';
import * as client from 'openid-client';

const REDIRECT = 'http://127.0.0.1:9/v1/cabinet/callback';

/** A browser in miniature: follows redirects with a cookie jar and submits the provider's forms until it lands on the redirect URI. */
async function browse(start: string, login: string): Promise<URL> {
  const jar = new Map<string, string>();
  let url = start;
  let form: URLSearchParams | null = null;
  for (let i = 0; i < 20; i++) {
    if (url.startsWith(REDIRECT)) return new URL(url);
    const r: Response = await fetch(url, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(form ? { body: form } : {}),
    });
    for (const c of r.headers.getSetCookie()) {
      const [kv] = c.split(';');
      const [k, v] = kv!.split('=');
      jar.set(k!, v ?? '');
    }
    form = null;
    if (r.status >= 300 && r.status < 400) {
      url = new URL(r.headers.get('location')!, url).toString();
      continue;
    }
    const html: string = await r.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (!action) throw new Error(`no form at ${url}: ${r.status}`);
    const prompt: string = /name="prompt" value="(\w+)"/.exec(html)?.[1] ?? 'login';
    form = new URLSearchParams(prompt === 'login' ? { prompt, login, password: 'x' } : { prompt });
    url = new URL(action.replace(/&amp;/g, '&'), url).toString();
  }
  throw new Error('too many steps');
}

describe('the OpenID Connect sign-in against oidc-provider', () => {
  let server: Server;
  let issuer: string;
  let idp: IdentityProvider;
  beforeAll(async () => {
    server = await new Promise<Server>((res) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => res(srv));
    });
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: 'rc-cabinet',
          client_secret: 'a-test-client-secret-of-some-length',
          redirect_uris: [REDIRECT],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_post',
        },
      ],
      findAccount: async (_ctx, sub) => ({
        accountId: sub,
        claims: async () => ({ sub, given_name: 'Анна', family_name: 'Иванова', snils: '112-233-445 95' }),
      }),
      claims: { openid: ['sub'], profile: ['given_name', 'family_name', 'snils'] },
      conformIdTokenClaims: false,
      pkce: { required: () => true },
      features: { devInteractions: { enabled: true } },
    });
    server.on('request', provider.callback());
    idp = await oidcProvider(
      OidcConfig.parse({
        kind: 'oidc',
        issuer,
        clientId: 'rc-cabinet',
        clientSecret: 'a-test-client-secret-of-some-length',
        redirectUri: REDIRECT,
        allowHttp: true,
      }),
    );
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  const checks = (): LoginChecks => ({ state: client.randomState(), nonce: client.randomNonce(), verifier: client.randomPKCECodeVerifier() });

  it('signs a person in: the id_token verified, the identity with name and SNILS', async () => {
    const c = checks();
    const back = await browse(await idp.authorizationUrl(c), 'user-42');
    const id = await idp.identify(Object.fromEntries(back.searchParams), c);
    expect(id).toEqual({ subject: 'oidc:user-42', name: 'Иванова Анна', esia: false, snils: '11223344595' });
  });

  it("a state that is not this sign-in's, and a replayed code, are refused with their codes", async () => {
    const c = checks();
    const back = await browse(await idp.authorizationUrl(c), 'user-43');
    const q = Object.fromEntries(back.searchParams);
    await expect(idp.identify({ ...q, state: 'another' }, c)).rejects.toMatchObject({ code: ErrorCode.CabinetBadState });
    await idp.identify(q, c);
    await expect(idp.identify(q, c)).rejects.toMatchObject({ code: ErrorCode.CabinetCodeRejected });
  });

  it('a wrong nonce (an id_token of another sign-in) is cabinet.bad-id-token', async () => {
    const c = checks();
    const back = await browse(await idp.authorizationUrl(c), 'user-44');
    await expect(idp.identify(Object.fromEntries(back.searchParams), { ...c, nonce: 'other' })).rejects.toMatchObject({ code: ErrorCode.CabinetBadIdToken });
  });
});
