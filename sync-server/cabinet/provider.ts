import { z } from 'zod';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { DemoConfig, demoProvider } from './demo-provider.js';
import { esiaProvider } from './esia.js';
import { oidcProvider } from './oidc.js';
import { commandSigner, keyFileSigner, type Signer } from './signer.js';
import { pkcs11Signer } from './pkcs11-signer.js';

/** Who signed in, as the identity provider vouches for them. */
export interface Identity {
  /** Stable id at the provider, prefixed with the provider kind (esia:OID, oidc:SUB). */
  subject: string;
  /** SNILS as 11 digits, when the provider gave it (ESIA with the snils scope). Never stored in clear. */
  snils?: string;
  name: string;
  /** Signed in through ESIA (the cabinet shows it). */
  esia: boolean;
}

/** One sign-in in flight: what the login step made and the callback checks. */
export interface LoginChecks {
  state: string;
  nonce: string;
  /** PKCE code verifier (plain OIDC; ESIA ignores it). */
  verifier: string;
}

/** A sign-in provider: ESIA (esia.ts), plain OpenID Connect (oidc.ts), or the demo's own page (demo-provider.ts, npm start only). */
export interface IdentityProvider {
  readonly kind: 'esia' | 'oidc' | 'demo';
  /** Where to send the browser to sign in. */
  authorizationUrl(c: LoginChecks): Promise<string>;
  /** The callback's query (code, state, iss…) → a verified identity; coded cabinet.* errors on every failure. */
  identify(query: Record<string, string>, c: LoginChecks): Promise<Identity>;
}

const SignerConfig = z.discriminatedUnion('kind', [
  /** A PEM private key (RSA, ECDSA, Ed25519): a file path or the PEM itself. */
  z.object({ kind: z.literal('key'), key: z.string().min(1) }).strict(),
  /** An external command (argv, no shell): data on stdin, signature on stdout (raw or base64). */
  /** A private key in a PKCS#11 token, by label; the PIN from the environment variable named by pinEnv (default RC_ESIA_PIN). */
  z
    .object({
      kind: z.literal('pkcs11'),
      library: z.string().min(1),
      tokenLabel: z.string().min(1),
      keyLabel: z.string().min(1),
      pinEnv: z.string().default('RC_ESIA_PIN'),
      mechanism: z.number().int().nonnegative().optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('command'),
      argv: z.array(z.string().min(1)).min(1),
      base64: z.boolean().default(false),
      timeoutMs: z.number().int().positive().default(10_000),
    })
    .strict(),
]);

export const EsiaConfig = z
  .object({
    kind: z.literal('esia'),
    /** e.g. https://esia.gosuslugi.ru (the stand-in's URL in tests). */
    baseUrl: z.url(),
    /** The system's mnemonic registered with ESIA. */
    clientId: z.string().min(1),
    /** The callback registered with ESIA: https://HOST/v1/cabinet/callback. */
    redirectUri: z.url(),
    scope: z.string().default('openid fullname snils'),
    /** The hash of the system's certificate (client_certificate_hash), when ESIA asks for it. */
    certHash: z.string().optional(),
    signer: SignerConfig,
    /** ESIA's token-signing key: a PEM public key or certificate (file path or PEM), or a JWKS URL. */
    verify: z.union([z.object({ publicKey: z.string().min(1) }).strict(), z.object({ jwksUrl: z.url() }).strict()]),
    /** The `iss` of ESIA's tokens (default: baseUrl + '/'). */
    issuer: z.string().optional(),
    timeoutMs: z.number().int().positive().default(10_000),
  })
  .strict();
export type EsiaConfig = z.output<typeof EsiaConfig>;

export const OidcConfig = z
  .object({
    kind: z.literal('oidc'),
    /** The issuer URL (its /.well-known/openid-configuration is read at start). */
    issuer: z.url(),
    clientId: z.string().min(1),
    clientSecret: z.string().min(1).optional(),
    redirectUri: z.url(),
    scope: z.string().default('openid profile'),
    /** Allow http:// (a test deployment on loopback only). */
    allowHttp: z.boolean().default(false),
  })
  .strict();
export type OidcConfig = z.output<typeof OidcConfig>;

/** The cabinet's part of the server configuration (`--cabinet FILE`, JSON). */
export const CabinetConfig = z
  .object({
    /** kind 'demo' (demo-provider.ts) is refused unless the demo started the server (identityProvider, cabinet.demo-only). */
    provider: z.discriminatedUnion('kind', [EsiaConfig, OidcConfig, DemoConfig]),
    /** HMAC key for SNILS (keyed hashes only): a file with at least 32 hex characters; default DATA/cabinet-snils.key, made at first start. */
    snilsKeyFile: z.string().optional(),
  })
  .strict();
export type CabinetConfig = z.output<typeof CabinetConfig>;

export function parseCabinetConfig(raw: unknown): CabinetConfig {
  const r = CabinetConfig.safeParse(raw);
  if (!r.success)
    throw new RcError(ErrorCode.CabinetProviderConfig, 'the cabinet configuration is not valid', {
      issues: r.error.issues.slice(0, 10).map((i) => `${i.path.join('.')}: ${i.message}`),
    });
  return r.data;
}

export function signerFrom(c: z.output<typeof SignerConfig>, env: NodeJS.ProcessEnv = process.env): Signer {
  if (c.kind === 'key') return keyFileSigner(c.key);
  if (c.kind === 'command') return commandSigner(c.argv, { base64: c.base64, timeoutMs: c.timeoutMs });
  const pin = env[c.pinEnv];
  if (!pin) throw new RcError(ErrorCode.CabinetProviderConfig, `the PKCS#11 signer's PIN is not set (${c.pinEnv})`, { pinEnv: c.pinEnv });
  return pkcs11Signer({
    library: c.library,
    tokenLabel: c.tokenLabel,
    keyLabel: c.keyLabel,
    pin,
    ...(c.mechanism !== undefined ? { mechanism: c.mechanism } : {}),
  });
}

/**
 * The configured provider (an OIDC provider's discovery document is fetched here: cabinet.provider-down when it cannot be).
 * The demo's provider lets anyone sign in as anyone: refused (cabinet.demo-only) unless `demo` is set, which only the demo
 * (demo/demo.ts, npm start) does — no command-line option of the server sets it, as --dev-token-key is refused outside it.
 */
export async function identityProvider(c: CabinetConfig['provider'], o: { demo?: boolean; clock?: () => number } = {}): Promise<IdentityProvider> {
  if (c.kind === 'demo') {
    if (o.demo !== true)
      throw new RcError(
        ErrorCode.CabinetDemoOnly,
        "the demo's identity provider (kind demo) is refused outside the demo (npm start): anyone could sign in as anyone",
      );
    return demoProvider(c, o.clock);
  }
  return c.kind === 'esia' ? esiaProvider(c, signerFrom(c.signer)) : oidcProvider(c);
}

/** The message of an unknown error, for a coded error's context (never a token or a code). */
export const why = (e: unknown): string => (e instanceof Error ? e.message : String(e)).slice(0, 200);
