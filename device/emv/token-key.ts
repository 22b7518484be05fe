import { openPkcs11, softDeriver, type Pkcs11Location, type TokenDeriver } from '../../protocol/token-hsm.js';
import { DEV_TOKEN_KEY, parseTokenKey, refuseDevTokenKey, tokenKeyFromEnv, type TokenKey, type TokenScheme } from '../../protocol/token.js';

export type TokenKeySource = 'env' | 'config' | 'dev';

interface WarnLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/**
 * The token key the device derives tokens with:
 *  1. RC_TOKEN_KEY (hex) / RC_TOKEN_KEY_VERSION (default 1) / RC_TOKEN_KEY_SCHEME (default pan-expiry) from the environment, which
 *     overrides the configuration (so a technician can test a key without editing it);
 *  2. the configured key (hex), version (default 1) and scheme (default pan-psn: a file from before the migration);
 *  3. otherwise the development key (version 0), with a warning: tokens made with it
 *     match no list of a real deployment.
 * A key that is set but invalid throws RcError token.key-invalid rather than
 * falling back silently. The key itself is never logged.
 */
export function resolveTokenKey(
  configHex: string | undefined,
  configVersion: number | string | undefined,
  log: WarnLog,
  env: NodeJS.ProcessEnv = process.env,
  configScheme?: TokenScheme,
): TokenKey & { source: TokenKeySource } {
  const fromEnv = tokenKeyFromEnv(env);
  if (fromEnv) {
    if (configHex) log.warn({ keyVersion: fromEnv.version }, 'RC_TOKEN_KEY from the environment overrides the configured token key');
    else log.info({ keyVersion: fromEnv.version }, 'token key from the environment');
    return { ...fromEnv, source: 'env' };
  }
  if (configHex) {
    // a configured key without a scheme was written before the PAN ‖ expiry migration: pan-psn
    const k = parseTokenKey(configHex, configVersion ?? 1, configScheme ?? 'pan-psn');
    return { ...k, source: 'config' };
  }
  log.warn(
    { keyVersion: DEV_TOKEN_KEY.version },
    'no token key configured (RC_TOKEN_KEY or config): using the development key, tokens will match no real list',
  );
  return { ...DEV_TOKEN_KEY, source: 'dev' };
}

export interface TokenKeySettings {
  version?: number | undefined;
  scheme?: TokenScheme | undefined;
  hex?: string | undefined;
  pkcs11?: Pkcs11Location | undefined;
}

/**
 * The deriver the device makes tokens with. With `tokenKey.pkcs11` the key is in
 * the token and the HMAC is computed there (RC_TOKEN_KEY is then ignored, with a
 * warning). The configured version must be in the token; every older version the
 * token still holds (v beside v+1 after `rc-provision rotate`) comes along as the
 * deriver's `older`, newest first, so a card still listed under an older key's token
 * is recognised while the lists migrate (see docs/token-key.md, Rotation). Otherwise as resolveTokenKey, in memory. The public development key
 * (none configured, or the configured one is it) is refused with
 * token.dev-key-refused unless `allowDev` (the demo and tests: --dev-token-key).
 */
export function resolveTokenDeriver(
  cfg: TokenKeySettings | undefined,
  log: WarnLog,
  env: NodeJS.ProcessEnv = process.env,
  opts: { allowDev?: boolean } = {},
): TokenDeriver & { source: TokenKeySource | 'pkcs11' } {
  if (cfg?.pkcs11) {
    if (env.RC_TOKEN_KEY) log.warn({}, 'RC_TOKEN_KEY is ignored: the token key is in the PKCS#11 token');
    const version = cfg.version ?? 1;
    const token = openPkcs11(cfg.pkcs11, env);
    try {
      const d = token.deriversUpTo(version);
      const keyVersions = [d.version, ...(d.older ?? []).map((o) => o.version)];
      log.info({ keyVersion: version, keyVersions, tokenLabel: cfg.pkcs11.tokenLabel }, 'token key in the PKCS#11 token');
      return { ...d, source: 'pkcs11' };
    } catch (e) {
      token.close();
      throw e;
    }
  }
  const k = resolveTokenKey(cfg?.hex, cfg?.version, log, env, cfg?.scheme);
  refuseDevTokenKey(k.key, opts.allowDev === true, 'device');
  return { ...softDeriver(k), source: k.source };
}
