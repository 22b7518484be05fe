import { createRequire } from 'node:module';
import type * as Pkcs11Types from 'pkcs11js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Signer } from './signer.js';

type Pkcs11Module = typeof Pkcs11Types;

/**
 * A client_secret signer whose private key stays in a PKCS#11 token (an HSM, a CryptoPro/Rutoken token with a PKCS#11
 * module for GOST; SoftHSM in tests): the key is found by its label (CKO_PRIVATE_KEY) and every signature is made inside
 * the token with `mechanism` — CKM_SHA256_RSA_PKCS by default; for GOST R 34.10-2012 the module's
 * CKM_GOSTR3410_WITH_GOSTR3411_12_256 (0xD4321008 in the TC 26 vendor range) is given as a number. One session, opened
 * at first use and kept; errors are cabinet.signer-failed (the module, the label, the PIN), never with the data.
 */
export interface Pkcs11SignerConfig {
  library: string;
  tokenLabel: string;
  pin: string;
  keyLabel: string;
  mechanism?: number;
}

const fail = (what: string, e: unknown, ctx: Record<string, unknown> = {}) =>
  new RcError(ErrorCode.CabinetSignerFailed, `PKCS#11 signer: ${what}`, { ...ctx, err: e instanceof Error ? e.message : String(e) });

export function pkcs11Signer(c: Pkcs11SignerConfig): Signer & { close(): void } {
  let m: Pkcs11Module;
  try {
    m = createRequire(import.meta.url)('pkcs11js') as Pkcs11Module;
  } catch (e) {
    throw fail('the pkcs11js module is not installed or did not build', e);
  }
  let state: { p: Pkcs11Types.PKCS11; session: Buffer; key: Buffer } | null = null;
  const open = () => {
    if (state) return state;
    const p = new m.PKCS11();
    try {
      p.load(c.library);
    } catch (e) {
      throw fail('cannot load the module', e, { library: c.library });
    }
    try {
      p.C_Initialize();
    } catch (e) {
      if (!String(e).includes('CKR_CRYPTOKI_ALREADY_INITIALIZED')) throw fail('C_Initialize failed', e);
    }
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === c.tokenLabel);
    if (!slot) throw fail('no token with this label', null, { tokenLabel: c.tokenLabel });
    const session = p.C_OpenSession(slot, m.CKF_SERIAL_SESSION);
    try {
      p.C_Login(session, m.CKU_USER, c.pin);
    } catch (e) {
      if (!String(e).includes('CKR_USER_ALREADY_LOGGED_IN')) {
        p.C_CloseSession(session);
        throw fail('login refused', e, { tokenLabel: c.tokenLabel });
      }
    }
    p.C_FindObjectsInit(session, [
      { type: m.CKA_CLASS, value: m.CKO_PRIVATE_KEY },
      { type: m.CKA_LABEL, value: c.keyLabel },
    ]);
    const key = p.C_FindObjects(session, 1)[0];
    p.C_FindObjectsFinal(session);
    if (!key) {
      p.C_CloseSession(session);
      throw fail('no private key with this label in the token', null, { keyLabel: c.keyLabel });
    }
    state = { p, session, key };
    return state;
  };
  return {
    sign: async (data) => {
      const s = open();
      try {
        s.p.C_SignInit(s.session, { mechanism: c.mechanism ?? m.CKM_SHA256_RSA_PKCS }, s.key);
        return Buffer.from(s.p.C_Sign(s.session, data, Buffer.alloc(1024)));
      } catch (e) {
        throw fail('the token did not sign', e, { keyLabel: c.keyLabel });
      }
    },
    close: () => {
      if (!state) return;
      try {
        state.p.C_CloseSession(state.session);
      } catch {
        // already closed
      }
      state = null;
    },
  };
}
