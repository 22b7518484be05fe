/**
 * Issue 15 item 1: the ESIA client_secret signed inside a PKCS#11 token (SoftHSM here; a GOST-capable token in production):
 * the signature verifies with the key's public half, and a wrong label or PIN is cabinet.signer-failed.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, verify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { pkcs11Signer } from '../../sync-server/cabinet/pkcs11-signer.js';
import { parseCabinetConfig, signerFrom } from '../../sync-server/cabinet/provider.js';
import { softhsmAvailable, startSoftHsm, type SoftHsmRig } from '../support/rig/softhsm.js';

describe.skipIf(!softhsmAvailable())('the PKCS#11 client_secret signer on SoftHSM', () => {
  let hsm: SoftHsmRig;
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const closers: (() => void)[] = [];
  beforeAll(() => {
    hsm = startSoftHsm('rc-esia', '4321');
    const pem = join(hsm.tokenDir, '..', 'esia-client.pem');
    writeFileSync(pem, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    execFileSync('softhsm2-util', ['--import', pem, '--label', 'esia-client', '--id', '01', '--token', 'rc-esia', '--pin', '4321'], {
      env: { ...process.env, SOFTHSM2_CONF: hsm.confPath },
      stdio: 'pipe',
    });
  });
  afterAll(() => {
    for (const c of closers) c();
    hsm?.close();
  });

  const data = Buffer.from('RCKALMopenid fullname snils2026.12.02 04:30:00 +0000f1e2https://cabinet.example/v1/cabinet/callback');

  it('signs inside the token: the signature verifies with the public key (RSA, SHA-256)', async () => {
    const s = pkcs11Signer({ library: hsm.library, tokenLabel: 'rc-esia', pin: '4321', keyLabel: 'esia-client' });
    closers.push(s.close);
    const sig = await s.sign(data);
    expect(verify('sha256', data, keys.publicKey, sig)).toBe(true);
    expect(verify('sha256', Buffer.concat([data, Buffer.from('x')]), keys.publicKey, await s.sign(data))).toBe(false);
  });

  it('from the cabinet configuration, with the PIN from the environment', async () => {
    const c = parseCabinetConfig({
      provider: {
        kind: 'esia',
        baseUrl: 'https://esia.example',
        clientId: 'RCKALM',
        redirectUri: 'https://cabinet.example/v1/cabinet/callback',
        signer: { kind: 'pkcs11', library: hsm.library, tokenLabel: 'rc-esia', keyLabel: 'esia-client' },
        verify: { publicKey: 'unused.pem' },
      },
    });
    const esia = c.provider;
    if (esia.kind !== 'esia') throw new Error('esia');
    expect(() => signerFrom(esia.signer, {})).toThrow(expect.objectContaining({ code: ErrorCode.CabinetProviderConfig }));
    const s = signerFrom(esia.signer, { RC_ESIA_PIN: '4321' });
    expect(verify('sha256', data, keys.publicKey, await s.sign(data))).toBe(true);
  });

  it('an unknown key label is cabinet.signer-failed', async () => {
    const s = pkcs11Signer({ library: hsm.library, tokenLabel: 'rc-esia', pin: '4321', keyLabel: 'no-such-key' });
    await expect(s.sign(data)).rejects.toMatchObject({ code: ErrorCode.CabinetSignerFailed, context: { keyLabel: 'no-such-key' } });
  });
});
