/**
 * Issue 15: the cabinet's small parts — the ESIA timestamp, the client_secret signers (a key file, and an external command
 * as a CryptoPro/openssl-gost install is used: here openssl with RSA), the connect lock's hour, the typed card's expiry.
 */
import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { esiaTimestamp, snilsDigits } from '../../sync-server/cabinet/esia.js';
import { ConnectLock } from '../../sync-server/cabinet/lock.js';
import { parseCabinetConfig } from '../../sync-server/cabinet/provider.js';
import { commandSigner, keyFileSigner } from '../../sync-server/cabinet/signer.js';
import { tokeniseHolderCard } from '../../sync-server/console/cards.js';
import { expectRcError } from '../support/errors.js';
import { MIR_PAN, MIR_PAN_BAD_LUHN } from '../support/pans.js';

const dir = mkdtempSync(join(tmpdir(), 'rc-cabinet-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ESIA request parts', () => {
  it('the timestamp is yyyy.MM.dd HH:mm:ss +0000', () => {
    expect(esiaTimestamp(new Date('2026-03-04T05:06:07.890Z'))).toBe('2026.03.04 05:06:07 +0000');
  });
  it('SNILS as ESIA writes it becomes 11 digits; anything else is dropped', () => {
    expect(snilsDigits('112-233-445 95')).toBe('11223344595');
    expect(snilsDigits('112-233')).toBeUndefined();
  });
  it('a configuration without a signer is cabinet.provider-config', () => {
    expectRcError(
      () => parseCabinetConfig({ provider: { kind: 'esia', baseUrl: 'https://esia.example', clientId: 'X', redirectUri: 'https://a/cb' } }),
      ErrorCode.CabinetProviderConfig,
    );
  });
});

describe('client_secret signers', () => {
  const data = Buffer.from('RCKALMopenid fullname2026.03.04 05:06:07 +0000uuidhttps://a/cb');
  for (const type of ['rsa', 'ec', 'ed25519'] as const) {
    it(`a ${type} key file signs so that its public key verifies`, async () => {
      const k =
        type === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : type === 'ec'
            ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
            : generateKeyPairSync('ed25519');
      const file = join(dir, `${type}.pem`);
      writeFileSync(file, k.privateKey.export({ type: 'pkcs8', format: 'pem' }));
      const sig = await keyFileSigner(file).sign(data);
      expect(verify(type === 'ed25519' ? null : 'sha256', data, k.publicKey, sig)).toBe(true);
    });
  }

  it('an external command (openssl dgst -sign) signs the data it reads on stdin', async () => {
    const k = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const file = join(dir, 'cmd.pem');
    writeFileSync(file, k.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const sig = await commandSigner(['openssl', 'dgst', '-sha256', '-sign', file]).sign(data);
    expect(verify('sha256', data, k.publicKey, sig)).toBe(true);
  });

  it('a failing or missing command is cabinet.signer-failed, with the exit code and not the data', async () => {
    const e = await commandSigner(['openssl', 'dgst', '-sha256', '-sign', join(dir, 'missing.pem')])
      .sign(data)
      .catch((x: unknown) => x);
    expect(e).toMatchObject({ code: ErrorCode.CabinetSignerFailed, context: { exit: 1 } });
    expect(JSON.stringify(e)).not.toContain('RCKALM');
    await expect(commandSigner(['/nonexistent/signer']).sign(data)).rejects.toMatchObject({ code: ErrorCode.CabinetSignerFailed });
    await expect(commandSigner(['sleep', '5'], { timeoutMs: 100 }).sign(data)).rejects.toMatchObject({ code: ErrorCode.CabinetSignerFailed });
  });
});

describe('the connect lock', () => {
  it('the fifth wrong number within an hour locks for an hour from then, per person and per address', () => {
    let now = 0;
    const lock = new ConnectLock(() => now);
    for (let i = 0; i < 4; i++) {
      lock.failed('p1', '10.0.0.1');
      now += 60_000;
    }
    expect(lock.lockedUntil('p1', '10.0.0.1')).toBeNull();
    lock.failed('p1', '10.0.0.1');
    const until = lock.lockedUntil('p1', '10.0.0.1');
    expect(until).toBe(now + 3600_000);
    // the same person from elsewhere, and someone else from the same address, are locked too
    expect(lock.lockedUntil('p1', '10.0.0.2')).toBe(until);
    expect(lock.lockedUntil('p2', '10.0.0.1')).toBe(until);
    expect(lock.lockedUntil('p2', '10.0.0.2')).toBeNull();
    now = until! - 1;
    expect(lock.lockedUntil('p1', '10.0.0.1')).not.toBeNull();
    now = until!;
    expect(lock.lockedUntil('p1', '10.0.0.1')).toBeNull();
  });
  it('wrong numbers spread over more than an hour do not lock', () => {
    let now = 0;
    const lock = new ConnectLock(() => now);
    for (let i = 0; i < 10; i++) {
      lock.failed('p1', 'a');
      now += 16 * 60_000;
    }
    expect(lock.lockedUntil('p1', 'a')).toBeNull();
  });
});

describe('a card typed with its expiry', () => {
  it.each([
    ['12/30', '2030-12'],
    ['1230', '2030-12'],
    ['12/2030', '2030-12'],
    ['12.30', '2030-12'],
    ['01/29', '2029-01'],
  ])('%s is %s', (typed, want) => {
    const c = tokeniseHolderCard(MIR_PAN, typed, DEV_TOKEN_KEY);
    expect(c).toMatchObject({ expiry: want, masked: '220012******9019', keyVersion: DEV_TOKEN_KEY.version });
  });
  it('a month outside 1..12 or a malformed date is card.bad-expiry; a bad check digit card.bad-pan, without the number', () => {
    for (const e of ['13/30', '00/30', '1/30', 'soon', '12/3']) expectRcError(() => tokeniseHolderCard(MIR_PAN, e, DEV_TOKEN_KEY), ErrorCode.CardBadExpiry);
    const err = expectRcError(() => tokeniseHolderCard(MIR_PAN_BAD_LUHN, '12/30', DEV_TOKEN_KEY), ErrorCode.CardBadPan);
    expect(JSON.stringify(err)).not.toContain(MIR_PAN_BAD_LUHN);
  });
});
