import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pkcs11Config } from '../../../protocol/token-hsm.js';

/** Debian's SoftHSM2 module (package softhsm2). */
export const SOFTHSM_LIBRARY = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsmRig extends Pkcs11Config {
  /** The token store: the stand-in for the validator's secure element, outside any device directory. */
  tokenDir: string;
  /** SOFTHSM2_CONF for child processes. */
  confPath: string;
  close(): void;
}

export const softhsmAvailable = () => existsSync(SOFTHSM_LIBRARY) && existsSync('/usr/bin/softhsm2-util');

/**
 * A SoftHSM2 token of our own: a config file pointing at a temp token dir and
 * one initialised token. SoftHSM reads SOFTHSM2_CONF when the module is
 * initialised, once per process: so this sets it for the whole test process
 * (vitest runs each integration file in a process of its own).
 */
export function startSoftHsm(label = 'rc-test', pin = '1234'): SoftHsmRig {
  const dir = mkdtempSync(join(tmpdir(), 'rc-softhsm-'));
  const tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir);
  const confPath = join(dir, 'softhsm2.conf');
  writeFileSync(confPath, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = confPath;
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', `${pin}-so`], {
    env: { ...process.env, SOFTHSM2_CONF: confPath },
    stdio: 'pipe',
  });
  return { library: SOFTHSM_LIBRARY, tokenLabel: label, pin, tokenDir, confPath, close: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A session of the test's own on the rig's token, straight through pkcs11js (not the code under test): to plant
 * objects the code would not make, or to try reading what it must not give out. `m` is the module's constants.
 */
export async function rawSession(rig: Pkcs11Config, rw = false) {
  const m = (await import('pkcs11js')).default;
  const p = new m.PKCS11();
  p.load(rig.library);
  try {
    p.C_Initialize();
  } catch {
    /* already, in this process */
  }
  const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === rig.tokenLabel)!;
  const s = p.C_OpenSession(slot, m.CKF_SERIAL_SESSION | (rw ? m.CKF_RW_SESSION : 0));
  return { m, p, s };
}
