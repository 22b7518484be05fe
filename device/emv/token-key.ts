import { DEV_TOKEN_KEY, parseTokenKey, tokenKeyFromEnv, type TokenKey } from '../../protocol/token.js';

export type TokenKeySource = 'env' | 'config' | 'dev';

interface WarnLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/**
 * The token key the device derives tokens with:
 *  1. RC_TOKEN_KEY (hex) / RC_TOKEN_KEY_VERSION (default 1) from the environment, which
 *     overrides the configuration (so a technician can test a key without editing it);
 *  2. the configured key (hex) and version (default 1);
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
): TokenKey & { source: TokenKeySource } {
  const fromEnv = tokenKeyFromEnv(env);
  if (fromEnv) {
    if (configHex) log.warn({ keyVersion: fromEnv.version }, 'RC_TOKEN_KEY from the environment overrides the configured token key');
    else log.info({ keyVersion: fromEnv.version }, 'token key from the environment');
    return { ...fromEnv, source: 'env' };
  }
  if (configHex) {
    const k = parseTokenKey(configHex, configVersion ?? 1);
    return { ...k, source: 'config' };
  }
  log.warn(
    { keyVersion: DEV_TOKEN_KEY.version },
    'no token key configured (RC_TOKEN_KEY or config): using the development key, tokens will match no real list',
  );
  return { ...DEV_TOKEN_KEY, source: 'dev' };
}
