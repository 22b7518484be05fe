import { constants as cryptoConstants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Pkcs11Types from 'pkcs11js';
import { ErrorCode, RcError } from './errors.js';
import { CURRENT_TOKEN_SCHEME, TOKEN_BYTES, deriveToken, tokenSuffix, type CardTokenData, type KeyedToken, type TokenKey, type TokenScheme } from './token.js';

/**
 * Where the card-token key lives and where the HMAC is computed.
 *
 * A stolen validator must yield no PAN: with the token key and a BIN, every
 * token of a published list can be brute-forced back to its card number in
 * seconds. So in service the key sits in a PKCS#11 token (the validator's SAM
 * or secure element; the server's HSM) as a non-extractable, sensitive secret
 * key, and the HMAC is computed inside it: the key never enters this process.
 * Tests use SoftHSM2 through the same code.
 *
 * `TokenDeriver` is the one seam: `softDeriver` (a key in memory: the demo and
 * unit tests) and `Pkcs11Token.deriver` (the key in a token) give the same
 * tokens for the same key (pinned by test/integration/token-hsm.test.ts).
 */
export interface TokenDeriver {
  /** Key version, stored with every token so keys can rotate. */
  readonly version: number;
  /** What follows the PAN in this version's HMAC input (protocol/token.ts); absent: CURRENT_TOKEN_SCHEME. */
  readonly scheme?: TokenScheme | undefined;
  /** token = HMAC-SHA256(key, PAN ‖ YYMM, or PAN ‖ PSN for a pan-psn version) truncated to 16 bytes, hex. `pan` is ASCII digits; the caller wipes it. */
  derive(pan: Uint8Array, card: CardTokenData): string;
  /**
   * Older key versions the same source still holds (a device's token during a rotation: v beside v+1), newest
   * first. A device derives a card's token with each too and looks them up after this one's; absent or empty
   * when the source holds one version (then no extra HMAC is computed).
   */
  readonly older?: readonly TokenDeriver[];
  close(): void;
}

export function softDeriver(key: TokenKey): TokenDeriver {
  return { version: key.version, scheme: key.scheme ?? CURRENT_TOKEN_SCHEME, derive: (pan, card) => deriveToken(pan, card, key), close: () => {} };
}

/**
 * One deriver for several key versions: the newest derives the card's token, the others are its `older`
 * (newest first). Closing it closes them all. One deriver is returned as it is.
 */
export function deriverRing(derivers: readonly TokenDeriver[]): TokenDeriver {
  const sorted = [...derivers].sort((a, b) => b.version - a.version);
  const [newest, ...older] = sorted;
  if (!newest) throw new RcError(ErrorCode.TokenKeyInvalid, 'no token key version to derive with', {});
  if (new Set(sorted.map((d) => d.version)).size !== sorted.length) {
    throw new RcError(ErrorCode.TokenKeyInvalid, 'two token keys with the same version', { versions: sorted.map((d) => d.version) });
  }
  if (older.length === 0) return newest;
  return {
    version: newest.version,
    scheme: newest.scheme,
    derive: (pan, card) => newest.derive(pan, card),
    older,
    close: () => {
      for (const d of sorted) d.close();
    },
  };
}

/** Every token of a card a deriver gives, newest version first: one per version it holds (one HMAC each). */
export function deriveAllVersions(d: TokenDeriver, pan: Uint8Array, card: CardTokenData): KeyedToken[] {
  const out: KeyedToken[] = [{ token: d.derive(pan, card), keyVersion: d.version }];
  for (const o of d.older ?? []) out.push({ token: o.derive(pan, card), keyVersion: o.version });
  return out;
}

/** Where a device or the server finds its token (config `tokenKey.pkcs11`, CLI `--pkcs11-*`). */
export interface Pkcs11Location {
  library: string;
  tokenLabel: string;
  /** File holding the user PIN (mode 0600, not readable by group or others); else RC_PKCS11_PIN. */
  pinFile?: string | undefined;
}

/** The user PIN: from the 0600 pin file, else RC_PKCS11_PIN. Never logged. */
export function readPkcs11Pin(loc: Pkcs11Location, env: NodeJS.ProcessEnv = process.env): string {
  if (loc.pinFile) {
    let mode: number;
    let pin: string;
    try {
      mode = statSync(loc.pinFile).mode;
      pin = readFileSync(loc.pinFile, 'utf8').trim();
    } catch (e) {
      throw hsmError('cannot read the PIN file', e, { pinFile: loc.pinFile });
    }
    if ((mode & 0o077) !== 0)
      throw hsmError('the PIN file must be readable by its owner only (chmod 600)', null, { pinFile: loc.pinFile, mode: (mode & 0o777).toString(8) });
    if (!pin) throw hsmError('the PIN file is empty', null, { pinFile: loc.pinFile });
    return pin;
  }
  const pin = env.RC_PKCS11_PIN;
  if (!pin) throw hsmError('no PIN: set tokenKey.pkcs11.pinFile (--pkcs11-pin-file) or RC_PKCS11_PIN', null, { tokenLabel: loc.tokenLabel });
  return pin;
}

/** Open the token at `loc`, reading the PIN as readPkcs11Pin does. */
export function openPkcs11(loc: Pkcs11Location, env: NodeJS.ProcessEnv = process.env): Pkcs11Token {
  return Pkcs11Token.open({ library: loc.library, tokenLabel: loc.tokenLabel, pin: readPkcs11Pin(loc, env) });
}

export interface Pkcs11Config {
  /** Path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  library: string;
  /** Label of the token (slot) that holds the keys. */
  tokenLabel: string;
  /** User PIN. */
  pin: string;
}

/** Label of the card-token key of a version inside the token. */
export const tokenKeyLabel = (version: number) => `rc-token-key-v${version}`;
/** Label of the device's RSA key pair the server wraps the token key for at enrolment. */
export const WRAPPING_KEY_LABEL = 'rc-wrap';

type Pkcs11Module = typeof Pkcs11Types;

let loaded: Pkcs11Module | null = null;
function pkcs11js(): Pkcs11Module {
  if (loaded) return loaded;
  try {
    // optional dependency (native): loaded only where a token is configured
    loaded = createRequire(import.meta.url)('pkcs11js') as Pkcs11Module;
    return loaded;
  } catch (e) {
    throw new RcError(ErrorCode.TokenHsmUnavailable, 'the pkcs11js module is not installed or did not build', { err: String(e) });
  }
}

const hsmError = (what: string, e: unknown, context: Record<string, unknown> = {}) =>
  new RcError(ErrorCode.TokenHsmUnavailable, `PKCS#11: ${what}`, { ...context, err: e instanceof Error ? e.message : String(e) });

/** RSA-OAEP with SHA-1 (what SoftHSM2 2.6 wraps and unwraps with; see wrapForToken). */
const OAEP = (m: Pkcs11Module): Pkcs11Types.Mechanism => {
  const parameter: Pkcs11Types.RsaOAEP = { type: m.CK_PARAMS_RSA_OAEP, hashAlg: m.CKM_SHA_1, mgf: m.CKG_MGF1_SHA1, source: 1 /* CKZ_DATA_SPECIFIED */ };
  return { mechanism: m.CKM_RSA_PKCS_OAEP, parameter };
};

/**
 * One logged-in session on one token. All calls are synchronous and take
 * microseconds (SoftHSM: measured in test/bench/tap.bench.ts --hsm).
 */
export class Pkcs11Token {
  private constructor(
    private readonly p: Pkcs11Types.PKCS11,
    private readonly session: Buffer,
    private readonly m: Pkcs11Module,
  ) {}

  static open(cfg: Pkcs11Config): Pkcs11Token {
    const m = pkcs11js();
    const p = new m.PKCS11();
    try {
      p.load(cfg.library);
    } catch (e) {
      throw hsmError('cannot load the module', e, { library: cfg.library });
    }
    try {
      p.C_Initialize();
    } catch (e) {
      // CKR_CRYPTOKI_ALREADY_INITIALIZED: another Pkcs11Token in this process
      if (!String(e).includes('CKR_CRYPTOKI_ALREADY_INITIALIZED')) throw hsmError('C_Initialize failed', e);
    }
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === cfg.tokenLabel);
    if (!slot) throw hsmError('no token with this label', null, { tokenLabel: cfg.tokenLabel });
    const session = p.C_OpenSession(slot, m.CKF_SERIAL_SESSION | m.CKF_RW_SESSION);
    try {
      p.C_Login(session, m.CKU_USER, cfg.pin);
    } catch (e) {
      if (!String(e).includes('CKR_USER_ALREADY_LOGGED_IN')) {
        p.C_CloseSession(session);
        throw hsmError('login refused', e, { tokenLabel: cfg.tokenLabel });
      }
    }
    return new Pkcs11Token(p, session, m);
  }

  private find(template: Pkcs11Types.Template): Buffer | null {
    this.p.C_FindObjectsInit(this.session, template);
    try {
      return this.p.C_FindObjects(this.session, 1)[0] ?? null;
    } finally {
      this.p.C_FindObjectsFinal(this.session);
    }
  }

  private secret(label: string): Buffer | null {
    const m = this.m;
    return this.find([
      { type: m.CKA_CLASS, value: m.CKO_SECRET_KEY },
      { type: m.CKA_LABEL, value: label },
    ]);
  }

  hasKey(version: number): boolean {
    return this.secret(tokenKeyLabel(version)) !== null;
  }

  /** Destroy the key of `version` in the token (rc-sync-server key retire): false when the token does not hold it. */
  destroyKey(version: number): boolean {
    const key = this.secret(tokenKeyLabel(version));
    if (!key) return false;
    this.p.C_DestroyObject(this.session, key);
    return true;
  }

  /**
   * Attributes of every card-token key we create: it signs (HMAC) and is sensitive (never readable in clear).
   * A device's key never leaves its token; the server's is `wrappable`: extractable, but being sensitive
   * it can leave the token only wrapped (C_WrapKey, see wrapKeyFor), never in clear.
   */
  private secretTemplate(version: number, wrappable = false, scheme: TokenScheme = CURRENT_TOKEN_SCHEME): Pkcs11Types.Template {
    const m = this.m;
    return [
      // the key version's token scheme (docs/token-key.md): keys made before it was recorded have no CKA_ID and are pan-psn
      { type: m.CKA_ID, value: Buffer.from(scheme, 'ascii') },
      { type: m.CKA_CLASS, value: m.CKO_SECRET_KEY },
      { type: m.CKA_KEY_TYPE, value: m.CKK_GENERIC_SECRET },
      { type: m.CKA_LABEL, value: tokenKeyLabel(version) },
      { type: m.CKA_TOKEN, value: true },
      { type: m.CKA_PRIVATE, value: true },
      { type: m.CKA_SENSITIVE, value: true },
      { type: m.CKA_EXTRACTABLE, value: wrappable },
      { type: m.CKA_SIGN, value: true },
      { type: m.CKA_VERIFY, value: true },
    ];
  }

  /**
   * Put a key given in clear into the token (the server's migration from
   * RC_TOKEN_KEY, and tests). The caller wipes `key` afterwards.
   */
  importKey(key: TokenKey, opts: { wrappable?: boolean } = {}): void {
    if (this.hasKey(key.version)) throw new RcError(ErrorCode.TokenKeyInvalid, `the token already holds key version ${key.version}`, { version: key.version });
    const value = Buffer.from(key.key);
    try {
      this.p.C_CreateObject(this.session, [...this.secretTemplate(key.version, opts.wrappable === true, key.scheme), { type: this.m.CKA_VALUE, value }]);
    } finally {
      value.fill(0);
    }
  }

  /** A fresh random key made inside the token (server: `key rotate`); wrappable as importKey's. */
  generateKey(version: number, opts: { wrappable?: boolean; scheme?: TokenScheme } = {}): void {
    if (this.hasKey(version)) throw new RcError(ErrorCode.TokenKeyInvalid, `the token already holds key version ${version}`, { version });
    const m = this.m;
    this.p.C_GenerateKey(this.session, { mechanism: m.CKM_GENERIC_SECRET_KEY_GEN }, [
      ...this.secretTemplate(version, opts.wrappable === true, opts.scheme),
      { type: m.CKA_VALUE_LEN, value: 32 },
    ]);
  }

  /** Key versions held in the token (labels rc-token-key-v<n>), ascending. */
  keyVersions(): number[] {
    const m = this.m;
    this.p.C_FindObjectsInit(this.session, [{ type: m.CKA_CLASS, value: m.CKO_SECRET_KEY }]);
    const handles: Buffer[] = [];
    try {
      for (let batch = this.p.C_FindObjects(this.session, 64); batch.length > 0; batch = this.p.C_FindObjects(this.session, 64)) handles.push(...batch);
    } finally {
      this.p.C_FindObjectsFinal(this.session);
    }
    const out: number[] = [];
    for (const h of handles) {
      const [label] = this.p.C_GetAttributeValue(this.session, h, [{ type: m.CKA_LABEL }]);
      const mm = /^rc-token-key-v(\d+)$/.exec(String(label?.value ?? ''));
      if (mm) out.push(Number(mm[1]));
    }
    return out.sort((a, b) => a - b);
  }

  /**
   * The server's side of enrolment with the key in its token: the key of `version`, wrapped inside the
   * token for a device token's RSA public key (RSA-OAEP, as wrapForToken), so it never enters this process
   * in clear. Needs a `wrappable` key (importKey / generateKey with wrappable).
   */
  wrapKeyFor(version: number, publicKeyPem: string): Buffer {
    const m = this.m;
    const key = this.secret(tokenKeyLabel(version));
    if (!key) throw new RcError(ErrorCode.TokenHsmKeyMissing, `the token has no card-token key version ${version}`, { version });
    const jwk = createPublicKey(publicKeyPem).export({ format: 'jwk' });
    if (jwk.kty !== 'RSA' || !jwk.n || !jwk.e) throw new RcError(ErrorCode.TokenKeyInvalid, 'the device wrapping key is not an RSA public key', {});
    const pub = this.p.C_CreateObject(this.session, [
      { type: m.CKA_CLASS, value: m.CKO_PUBLIC_KEY },
      { type: m.CKA_KEY_TYPE, value: m.CKK_RSA },
      { type: m.CKA_TOKEN, value: false },
      { type: m.CKA_WRAP, value: true },
      { type: m.CKA_MODULUS, value: Buffer.from(jwk.n, 'base64url') },
      { type: m.CKA_PUBLIC_EXPONENT, value: Buffer.from(jwk.e, 'base64url') },
    ]);
    try {
      return Buffer.from(this.p.C_WrapKey(this.session, OAEP(m), pub, key, Buffer.alloc(1024)));
    } catch (e) {
      throw hsmError('the token cannot wrap this key (made before wrapping was allowed? rotate to a new version)', e, { version });
    } finally {
      this.p.C_DestroyObject(this.session, pub);
    }
  }

  /**
   * The device's side of enrolment: an RSA key pair made inside the token
   * (private key non-extractable); the server wraps the token key for its
   * public key (`wrapForToken`), and `unwrapKey` puts it into the token.
   * Returns the public key as SPKI PEM.
   */
  wrappingPublicKey(): string {
    const m = this.m;
    const pub = this.find([
      { type: m.CKA_CLASS, value: m.CKO_PUBLIC_KEY },
      { type: m.CKA_LABEL, value: WRAPPING_KEY_LABEL },
    ]);
    const handle =
      pub ??
      this.p.C_GenerateKeyPair(
        this.session,
        { mechanism: m.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [
          { type: m.CKA_LABEL, value: WRAPPING_KEY_LABEL },
          { type: m.CKA_TOKEN, value: true },
          { type: m.CKA_MODULUS_BITS, value: 2048 },
          { type: m.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          { type: m.CKA_WRAP, value: true },
          { type: m.CKA_ENCRYPT, value: true },
        ],
        [
          { type: m.CKA_LABEL, value: WRAPPING_KEY_LABEL },
          { type: m.CKA_TOKEN, value: true },
          { type: m.CKA_PRIVATE, value: true },
          { type: m.CKA_SENSITIVE, value: true },
          { type: m.CKA_EXTRACTABLE, value: false },
          { type: m.CKA_UNWRAP, value: true },
          { type: m.CKA_DECRYPT, value: true },
        ],
      ).publicKey;
    const [mod, exp] = this.p.C_GetAttributeValue(this.session, handle, [{ type: m.CKA_MODULUS }, { type: m.CKA_PUBLIC_EXPONENT }]);
    const jwk = { kty: 'RSA', n: (mod!.value as Buffer).toString('base64url'), e: (exp!.value as Buffer).toString('base64url') };
    return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  }

  /** Unwrap a token key the server sealed for this token's wrapping key (RSA-OAEP, see wrapForToken). */
  unwrapKey(version: number, wrapped: Buffer, scheme: TokenScheme = CURRENT_TOKEN_SCHEME): void {
    const m = this.m;
    const priv = this.find([
      { type: m.CKA_CLASS, value: m.CKO_PRIVATE_KEY },
      { type: m.CKA_LABEL, value: WRAPPING_KEY_LABEL },
    ]);
    if (!priv) throw new RcError(ErrorCode.TokenHsmKeyMissing, 'the token has no wrapping key: run the enrolment again', {});
    const old = this.secret(tokenKeyLabel(version));
    if (old) this.p.C_DestroyObject(this.session, old); // re-enrolment replaces the key of that version
    try {
      this.p.C_UnwrapKey(this.session, OAEP(m), priv, wrapped, this.secretTemplate(version, false, scheme));
    } catch (e) {
      throw new RcError(ErrorCode.TokenKeyInvalid, 'the wrapped token key does not open with this token', { err: String(e) });
    }
  }

  /**
   * Derivers for the key of `version` and every older version the token holds (a device's token keeps v
   * beside v+1 after `rc-provision rotate`), as one deriver (deriverRing): `version` first, the older ones as
   * its `older`, newest first. Versions newer than `version` are not used. token.hsm-key-missing when the
   * token does not hold `version`.
   */
  deriversUpTo(version: number): TokenDeriver {
    const primary = this.deriver(version);
    const older = this.keyVersions()
      .filter((v) => v < version)
      .map((v) => this.deriver(v));
    if (older.length === 0) return primary;
    // the derivers share this one session: close it once
    return { ...deriverRing([primary, ...older].map((d) => ({ ...d, close: () => {} }))), close: () => this.close() };
  }

  /**
   * The token scheme of the key of `version`, from its CKA_ID (written when the key is made, imported or
   * unwrapped); a key without one was made before schemes were recorded: pan-psn.
   */
  schemeOf(version: number): TokenScheme {
    const key = this.secret(tokenKeyLabel(version));
    if (!key) throw new RcError(ErrorCode.TokenHsmKeyMissing, `the token has no card-token key version ${version}`, { version });
    return this.schemeOfHandle(key);
  }

  private schemeOfHandle(key: Buffer): TokenScheme {
    let id = '';
    try {
      const [a] = this.p.C_GetAttributeValue(this.session, key, [{ type: this.m.CKA_ID }]);
      id = a?.value ? Buffer.from(a.value as Buffer).toString('ascii') : '';
    } catch {
      /* no CKA_ID */
    }
    return id === 'pan-expiry' ? 'pan-expiry' : 'pan-psn';
  }

  /** A deriver computing the HMAC inside the token with the key of this version, over PAN ‖ the suffix of the key's scheme. */
  deriver(version: number): TokenDeriver {
    const key = this.secret(tokenKeyLabel(version));
    if (!key) throw new RcError(ErrorCode.TokenHsmKeyMissing, `the token has no card-token key version ${version}`, { version });
    const scheme = this.schemeOfHandle(key);
    const mech = { mechanism: this.m.CKM_SHA256_HMAC };
    const out = Buffer.alloc(32);
    return {
      version,
      scheme,
      derive: (pan, card) => {
        const suffix = tokenSuffix(scheme, card);
        const input = Buffer.alloc(pan.length + suffix.length);
        try {
          input.set(pan, 0);
          input.set(suffix, pan.length);
          this.p.C_SignInit(this.session, mech, key);
          const mac = this.p.C_Sign(this.session, input, out);
          return mac.subarray(0, TOKEN_BYTES).toString('hex');
        } finally {
          input.fill(0);
        }
      },
      close: () => this.close(),
    };
  }

  close(): void {
    try {
      this.p.C_Logout(this.session);
    } catch {
      /* not logged in */
    }
    try {
      this.p.C_CloseSession(this.session);
    } catch {
      /* closed */
    }
  }
}

/** The server's side of enrolment: the token key sealed for a device token's RSA-2048 public key (OAEP; SHA-1 is what SoftHSM2 2.6 unwraps with, and OAEP-SHA-1 is sound for key transport). */
export function wrapForToken(publicKeyPem: string, key: TokenKey): Buffer {
  return publicEncrypt({ key: createPublicKey(publicKeyPem), padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, key.key);
}

/** The server's card-token key in its own token (rc-sync-server start --pkcs11-*): it tokenises there and wraps for devices there. */
export interface HsmTokenKey {
  version: number;
  hsm: Pkcs11Token;
}
/** The server's key: in memory (RC_TOKEN_KEY, demo, tests) or in its token. */
export type ServerTokenKey = TokenKey | HsmTokenKey;

export const isHsmKey = (k: ServerTokenKey): k is HsmTokenKey => 'hsm' in k;

/** What enrolment seals for a device: the key wrapped for its token, or (no token: demo and tests) in clear. */
export function keyForDevice(k: ServerTokenKey, wrapKeyPem: string | undefined): { version: number; scheme: TokenScheme; hex?: string; wrapped?: string } {
  const scheme = serverKeyScheme(k);
  if (wrapKeyPem) {
    const wrapped = isHsmKey(k) ? k.hsm.wrapKeyFor(k.version, wrapKeyPem) : wrapForToken(wrapKeyPem, k);
    return { version: k.version, scheme, wrapped: wrapped.toString('base64') };
  }
  if (isHsmKey(k))
    throw new RcError(
      ErrorCode.TokenDeviceTokenRequired,
      "the server's token key can leave its token only wrapped: enrol the device with its own token (--pkcs11-*)",
      {
        version: k.version,
      },
    );
  return { version: k.version, scheme, hex: k.key.toString('hex') };
}

/** The token scheme of the server's key version: recorded in its token (CKA_ID) or given with the key in memory. */
export function serverKeyScheme(k: ServerTokenKey): TokenScheme {
  return isHsmKey(k) ? k.hsm.schemeOf(k.version) : (k.scheme ?? CURRENT_TOKEN_SCHEME);
}

/** A fresh random token key (32 bytes) for a new installation or a rotation. */
export function newTokenKey(version: number): TokenKey {
  return { version, key: randomBytes(32), scheme: CURRENT_TOKEN_SCHEME };
}
