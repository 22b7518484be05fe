import * as client from 'openid-client';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { why, type Identity, type IdentityProvider, type LoginChecks, type OidcConfig } from './provider.js';

/**
 * Plain OpenID Connect with openid-client (a regional identity provider, a test deployment): authorization code with
 * PKCE (S256), state and nonce; openid-client verifies the id_token (signature against the provider's JWKS, issuer,
 * audience, nonce, lifetime) and the RFC 9207 `iss` of the answer. A `snils` claim, when the provider gives one, links
 * the person like ESIA's.
 */
export async function oidcProvider(c: OidcConfig): Promise<IdentityProvider> {
  let config: client.Configuration;
  try {
    config = await client.discovery(
      new URL(c.issuer),
      c.clientId,
      c.clientSecret ? { client_secret: c.clientSecret } : undefined,
      c.clientSecret ? client.ClientSecretPost(c.clientSecret) : client.None(),
      c.allowHttp ? { execute: [client.allowInsecureRequests] } : undefined,
    );
  } catch (e) {
    throw new RcError(ErrorCode.CabinetProviderDown, "the OpenID provider's discovery document could not be read", { issuer: c.issuer, cause: why(e) });
  }
  return {
    kind: 'oidc',
    async authorizationUrl(l: LoginChecks) {
      return client
        .buildAuthorizationUrl(config, {
          redirect_uri: c.redirectUri,
          scope: c.scope,
          state: l.state,
          nonce: l.nonce,
          code_challenge: await client.calculatePKCECodeChallenge(l.verifier),
          code_challenge_method: 'S256',
        })
        .toString();
    },
    async identify(query, l): Promise<Identity> {
      const url = new URL(c.redirectUri);
      for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
      let tokens;
      try {
        tokens = await client.authorizationCodeGrant(config, url, {
          expectedState: l.state,
          expectedNonce: l.nonce,
          pkceCodeVerifier: l.verifier,
          idTokenExpected: true,
        });
      } catch (e) {
        const err = e as { code?: string; error?: string; status?: number };
        const detail = `${why(e)} ${why((e as { cause?: unknown }).cause ?? '')}`;
        if (/state/.test(detail)) throw new RcError(ErrorCode.CabinetBadState, "the OpenID provider's answer is not for this sign-in (state)");
        if (err.error === 'invalid_grant')
          throw new RcError(ErrorCode.CabinetCodeRejected, 'the OpenID provider refused the authorization code', { error: err.error });
        if (err.error === 'invalid_client') throw new RcError(ErrorCode.CabinetClientRejected, 'the OpenID provider refused our client credentials');
        if (err.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || err.code === 'OAUTH_RESPONSE_IS_NOT_JSON' || err instanceof TypeError)
          throw new RcError(ErrorCode.CabinetProviderDown, 'the OpenID provider did not answer usably', { cause: why(e) });
        throw new RcError(ErrorCode.CabinetBadIdToken, "the OpenID provider's answer did not verify", { cause: detail.slice(0, 300) });
      }
      const claims = tokens.claims();
      if (!claims) throw new RcError(ErrorCode.CabinetBadIdToken, 'the OpenID provider sent no id_token');
      const name = [claims['family_name'], claims['given_name']].filter((x) => typeof x === 'string').join(' ') || String(claims['name'] ?? claims.sub);
      const snils = typeof claims['snils'] === 'string' ? claims['snils'].replace(/\D/g, '') : '';
      return { subject: `oidc:${claims.sub}`, name, esia: false, ...(snils.length === 11 ? { snils } : {}) };
    },
  };
}
