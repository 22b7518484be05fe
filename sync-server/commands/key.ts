import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { z } from 'zod';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { openPkcs11, type HsmTokenKey, type Pkcs11Location } from '../../protocol/token-hsm.js';
import { DEV_TOKEN_KEY, refuseDevTokenKey, tokenKeyFromEnv, type TokenKey } from '../../protocol/token.js';
import { retireKeyVersion, type RetireResult } from '../key-retire.js';
import { DEFAULT_DATA_DIR, fail } from './client.js';
import { databaseOption, openCommandRegistry, type RegistryOpts } from './database.js';

export interface Pkcs11Opts {
  pkcs11Library?: string;
  pkcs11Token?: string;
  pkcs11PinFile?: string;
}

/** The three --pkcs11-* options (start and key). */
export function pkcs11Options(c: Command): Command {
  return c
    .option('--pkcs11-library <path>', 'PKCS#11 module holding the card-token key, e.g. /usr/lib/softhsm/libsofthsm2.so')
    .option('--pkcs11-token <label>', 'label of the token')
    .option('--pkcs11-pin-file <file>', 'file with the user PIN, mode 0600 (else RC_PKCS11_PIN)');
}

export function pkcs11Location(o: Pkcs11Opts): Pkcs11Location | null {
  if (!o.pkcs11Library && !o.pkcs11Token) return null;
  if (!o.pkcs11Library || !o.pkcs11Token)
    throw new RcError(ErrorCode.ConfigInvalid, '--pkcs11-library and --pkcs11-token go together', {
      library: o.pkcs11Library ?? null,
      token: o.pkcs11Token ?? null,
    });
  return { library: o.pkcs11Library, tokenLabel: o.pkcs11Token, ...(o.pkcs11PinFile ? { pinFile: o.pkcs11PinFile } : {}) };
}

interface Warn {
  warn(obj: object, msg: string): void;
}

/**
 * The server's card-token key, in this order: its PKCS#11 token (the newest key version
 * there, or `version`); RC_TOKEN_KEY in memory (never written anywhere); the public
 * development key only with --dev-token-key (the demo and tests), else token.dev-key-refused.
 */
export function serverTokenKey(o: Pkcs11Opts & { devTokenKey?: boolean; tokenKeyVersion?: string }, log: Warn, env = process.env): TokenKey | HsmTokenKey {
  const loc = pkcs11Location(o);
  if (loc) {
    if (env.RC_TOKEN_KEY) log.warn({}, 'RC_TOKEN_KEY is ignored: the token key is in the PKCS#11 token (rc-sync-server key import puts it there once)');
    const hsm = openPkcs11(loc, env);
    const versions = hsm.keyVersions();
    const version = o.tokenKeyVersion !== undefined ? Number(o.tokenKeyVersion) : versions.at(-1);
    if (version === undefined || !versions.includes(version)) {
      hsm.close();
      throw new RcError(ErrorCode.TokenHsmKeyMissing, 'the token holds no card-token key of that version: rc-sync-server key import (or key rotate) first', {
        version: version ?? null,
        versions,
      });
    }
    return { version, hsm };
  }
  const fromEnv = tokenKeyFromEnv(env);
  if (fromEnv) {
    refuseDevTokenKey(fromEnv.key, o.devTokenKey === true, 'sync-server');
    return fromEnv;
  }
  refuseDevTokenKey(DEV_TOKEN_KEY.key, o.devTokenKey === true, 'sync-server');
  log.warn({}, 'no token key (--pkcs11-* or RC_TOKEN_KEY): using the public development key (--dev-token-key)');
  return DEV_TOKEN_KEY;
}

/**
 * `rc-sync-server key import|rotate|list --pkcs11-…`: the server's card-token keys in its token.
 * Keys are made wrappable (extractable only wrapped, sensitive): enrolment wraps them for each
 * device's token inside this token (C_WrapKey), so no key ever passes through the server in clear.
 */
export function register(program: Command): void {
  const key = program.command('key').alias('keys').description("the card-token keys in the server's PKCS#11 token (see docs/token-key.md)");
  pkcs11Options(
    key
      .command('import')
      .description(
        'put RC_TOKEN_KEY (version RC_TOKEN_KEY_VERSION, default 1; scheme RC_TOKEN_KEY_SCHEME, default pan-expiry: pan-psn for a key made before the PAN ‖ expiry change) into the token, once (migration)',
      ),
  ).action((o: Pkcs11Opts) =>
    withToken(o, (hsm) => {
      const k = tokenKeyFromEnv();
      if (!k) throw new RcError(ErrorCode.TokenKeyInvalid, 'set RC_TOKEN_KEY (hex) and RC_TOKEN_KEY_VERSION to the key to import', {});
      refuseDevTokenKey(k.key, false, 'key import');
      hsm.importKey(k, { wrappable: true });
      k.key.fill(0);
      process.stdout.write(`card-token key version ${k.version} (${hsm.schemeOf(k.version)}) imported; remove RC_TOKEN_KEY from the environment\n`);
    }),
  );
  pkcs11Options(
    key.command('rotate').description('make a new key version inside the token (highest + 1); imports and enrolments use it from the next start'),
  ).action((o: Pkcs11Opts) =>
    withToken(o, (hsm) => {
      const v = (hsm.keyVersions().at(-1) ?? 0) + 1;
      hsm.generateKey(v, { wrappable: true });
      process.stdout.write(`card-token key version ${v} (${hsm.schemeOf(v)}) made in the token\n`);
    }),
  );
  pkcs11Options(
    key
      .command('list')
      .description('key versions held in the token (one a line; `--schemes`: with the scheme of each)')
      .option('--schemes', 'print each version with its token scheme'),
  ).action((o: Pkcs11Opts & { schemes?: boolean }) =>
    withToken(o, (hsm) => {
      const vs = hsm.keyVersions();
      process.stdout.write(`${(o.schemes ? vs.map((v) => `${v} ${hsm.schemeOf(v)}`) : vs).join('\n')}\n`);
    }),
  );
  registerRetire(key);
}

/** `--version N` of key retire: a key version is a positive integer. */
const KeyVersionArg = z.coerce.number().int().positive();

const cliUser = () => {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
};

/**
 * `rc-sync-server key retire --version N`: the checks and the registry record are key-retire.ts's; the key is
 * destroyed in the server's token when --pkcs11-* names it (a server on RC_TOKEN_KEY keeps no key to destroy).
 */
function registerRetire(key: Command): void {
  const retire = pkcs11Options(
    key
      .command('retire')
      .description(
        'retire an old key version: refused while it is the current version or a card or published list entry carries a token of it; then a server no longer starts with it (so no device is given it again) and its key is destroyed in the token',
      )
      .requiredOption('--version <n>', 'the key version to retire')
      .option('--data <dir>', 'data directory (registry)', DEFAULT_DATA_DIR)
      .option('--json', 'machine-readable output'),
  );
  databaseOption(retire).action((o: Pkcs11Opts & RegistryOpts & { version: string; json?: boolean }) => {
    try {
      const v = KeyVersionArg.safeParse(o.version);
      if (!v.success) throw new RcError(ErrorCode.InputInvalid, `--version: not a key version: ${o.version}`, { version: o.version });
      const loc = pkcs11Location(o);
      const hsm = loc ? openPkcs11(loc) : null;
      const db = openCommandRegistry(o);
      let r: RetireResult;
      try {
        r = retireKeyVersion(db, v.data, { versions: hsm ? hsm.keyVersions() : null, destroy: (n) => hsm?.destroyKey(n) ?? false }, cliUser());
      } finally {
        db.close();
        hsm?.close();
      }
      const out = { ...r, keyStore: hsm ? 'pkcs11' : 'none' };
      if (o.json) process.stdout.write(JSON.stringify(out) + '\n');
      else
        process.stdout.write(
          `card-token key version ${r.version} ${r.alreadyRetired ? 'was retired already' : 'retired'} (${r.retiredAt}); ` +
            (r.keyDestroyed
              ? 'its key was destroyed in the token\n'
              : hsm
                ? 'the token holds no key of it\n'
                : 'no --pkcs11-* token given: destroy the key wherever it is kept (RC_TOKEN_KEY)\n') +
            (r.use.stopListUnattributed > 0 ? `${r.use.stopListUnattributed} stop-list token(s) are no card's: their key version is unknown\n` : ''),
        );
    } catch (e) {
      fail(e, o.json === true);
    }
  });
}

function withToken(o: Pkcs11Opts, f: (hsm: ReturnType<typeof openPkcs11>) => void): void {
  try {
    const loc = pkcs11Location(o);
    if (!loc) throw new RcError(ErrorCode.ConfigInvalid, '--pkcs11-library and --pkcs11-token are required', {});
    const hsm = openPkcs11(loc);
    try {
      f(hsm);
    } finally {
      hsm.close();
    }
  } catch (e) {
    fail(e, false);
    process.exit(1);
  }
}
