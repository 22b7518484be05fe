import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readMirCard } from '../../device/emv/read.js';
import type { CardChannel, CardRead } from '../../device/reader/types.js';
import { RcError } from '../../protocol/errors.js';
import { expectRcError } from '../support/errors.js';
import { deriveToken, type TokenKey } from '../../protocol/token.js';
import { tokeniseHolderCard } from '../../sync-server/console/cards.js';
import { cardSpec, fixturePan, MIR_GPO1_READ, traceSpec, TRACE_NAMES, type TraceName } from './card-fixtures.js';
import type { CardRig } from './card-rig.js';

/**
 * THE shared EMV read suite: the same cases over every rig (in-process,
 * real pcscd + vpcd). Card specs are data files in test/fixtures/cards/ and
 * the real traces in test/fixtures/emv-traces/.
 */

const KEY: TokenKey = { version: 7, key: Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex') };
const NOW = new Date('2026-11-24T12:00:00Z');

/** The token of a card fixture: PAN ‖ its expiry (YYMM). */
function tokenOf(name: string): string {
  const s = cardSpec(name);
  if (s.kind !== 'emv') throw new Error(`${name} is not a synthetic card`);
  return deriveToken(Buffer.from(s.pan, 'ascii'), { expiry: s.expiry }, KEY);
}

/** The expiry as printed on the card's face (MM/YY), from the fixture's YYYY-MM. */
function printedExpiry(name: string): string {
  const s = cardSpec(name);
  if (s.kind !== 'emv') throw new Error(`${name} is not a synthetic card`);
  return `${s.expiry.slice(5, 7)}/${s.expiry.slice(2, 4)}`;
}

function expectNoPan(where: unknown, pan: string): void {
  const text = JSON.stringify(where) + (where instanceof Error ? where.message : '');
  expect(text).not.toContain(pan);
  expect(text).not.toContain(pan.slice(6, pan.length - 4));
}

export function cardReadSuite(rig: CardRig): void {
  const opts = { now: NOW, tokenKey: KEY, timeoutMs: 3000 };

  async function read(name: string): Promise<CardRead> {
    const ch = await rig.present(cardSpec(name));
    const r = await readMirCard(ch, opts);
    expectNoPan(r, fixturePan(name));
    return r;
  }

  async function refusal(present: () => Promise<CardChannel>): Promise<RcError> {
    return expectRcError(readMirCard(await present(), opts));
  }

  beforeAll(() => rig.setup());
  afterAll(() => rig.teardown());
  afterEach(() => rig.remove());

  it('reads a Mir card whose GPO answer is format 1 (tag 80)', async () => {
    const r = await read('mir-gpo1');
    expect(r).toMatchObject({ ...MIR_GPO1_READ, keyVersion: 7 });
  });

  it('a tapped card has the token its holder gets by typing its number and printed expiry (tokeniseHolderCard): connect, then tap', async () => {
    for (const name of ['mir-gpo1', 'mir-gpo2', 'mir-track2-only', 'mir-19-digits', 'mir-no-psn']) {
      const r = await read(name);
      const typed = tokeniseHolderCard(fixturePan(name), printedExpiry(name), KEY);
      expect(typed).toEqual({ token: r.token, masked: r.maskedPan, tokenPrefix: r.token.slice(0, 8), keyVersion: r.keyVersion, expiry: r.expiry });
      await rig.remove();
    }
  });

  it('reads a Mir card whose GPO answer is format 2 (tag 77)', async () => {
    const r = await read('mir-gpo2');
    expect(r).toMatchObject({ scheme: 'mir', maskedPan: '220012******9019', expiry: '2028-12', psn: '01' });
  });

  it('the token is HMAC(key, PAN ‖ expiry YYMM) truncated to 16 bytes, with the key version', async () => {
    const r = await read('mir-gpo2');
    expect(r.token).toBe(tokenOf('mir-gpo2'));
    expect(r.token).toMatch(/^[0-9a-f]{32}$/);
    expect(r.keyVersion).toBe(KEY.version);
  });

  it('maskedPan keeps the first 6 and last 4 digits, one * per hidden digit', async () => {
    for (const name of ['mir-gpo1', 'mir-19-digits']) {
      const pan = fixturePan(name);
      const r = await read(name);
      expect(r.maskedPan).toHaveLength(pan.length);
      expect(r.maskedPan).toBe(`${pan.slice(0, 6)}${'*'.repeat(pan.length - 10)}${pan.slice(-4)}`);
      await rig.remove();
    }
  });

  it('a plain Mir card reads in at most 6 APDUs (PPSE, SELECT, GPO, 2 records)', async () => {
    const r = await read('mir-gpo1');
    expect(r.apdus).toBeLessThanOrEqual(6);
    expect(r.apdus).toBe(5);
  });

  it('reads the PAN and expiry from Track 2 equivalent data when the card has no 5A', async () => {
    const r = await read('mir-track2-only');
    expect(r).toMatchObject({ maskedPan: '220409******2103', expiry: '2027-03', psn: '00' });
    expect(r.token).toBe(tokenOf('mir-track2-only'));
  });

  it('returns the payment account reference (9F24) when the card has one', async () => {
    const r = await read('mir-par');
    expect(r.par).toBe('V0010013820025123456789012345');
    expect(r.maskedPan).toBe('220011******3331');
  });

  it('reads a 19-digit PAN', async () => {
    const r = await read('mir-19-digits');
    expect(r.maskedPan).toBe('220012*********2341');
    expect(r.token).toBe(tokenOf('mir-19-digits'));
  });

  it('a card without a PAN sequence number reads with psn null and the same token (the PSN is not part of it)', async () => {
    const r = await read('mir-no-psn');
    expect(r.psn).toBeNull();
    expect(r.token).toBe(tokenOf('mir-no-psn'));
    expect(r.apdus).toBeLessThanOrEqual(6);
  });

  it('chooses the Mir application of a co-badged card that lists another scheme first', async () => {
    const r = await read('cobadge-visa-first');
    expect(r).toMatchObject({ scheme: 'mir', aid: 'A0000006581010', maskedPan: '220055******1108' });
  });

  it('selects the Mir AID directly when the card has no PPSE', async () => {
    const r = await read('mir-no-ppse');
    expect(r).toMatchObject({ scheme: 'mir', aid: 'A0000006581010', maskedPan: '220012******9019' });
    expect(r.apdus).toBeLessThanOrEqual(6);
  });

  it('follows 61xx with GET RESPONSE', async () => {
    const r = await read('mir-61xx');
    expect(r).toMatchObject({ maskedPan: '220012******9019', expiry: '2028-12', psn: '01' });
  });

  it('repeats a command with the Le a 6Cxx answer asks for', async () => {
    const r = await read('mir-6cxx');
    expect(r).toMatchObject({ maskedPan: '220012******9019', expiry: '2028-12', psn: '01' });
  });

  it('a card pulled mid-read gives card.removed, then the next card reads normally', async () => {
    const e = await refusal(() => rig.present(cardSpec('mir-pulled-mid-read')));
    expect(e.code).toBe('card.removed');
    expectNoPan(e, fixturePan('mir-pulled-mid-read'));
    await rig.remove();
    const r = await read('mir-gpo2');
    expect(r.maskedPan).toBe('220012******9019');
  });

  it('refuses a Visa card as card.not-mir after the PPSE alone, without its PAN', async () => {
    const e = await refusal(() => rig.present(cardSpec('visa')));
    expect(e.code).toBe('card.not-mir');
    expect(e.context).toEqual({ scheme: 'visa', aid: 'A0000000031010' });
    expectNoPan(e, fixturePan('visa'));
  });

  it('a garbled TLV in a record gives card.tlv-malformed, without the PAN', async () => {
    const e = await refusal(() => rig.present(cardSpec('mir-garbled-record')));
    expect(e.code).toBe('card.tlv-malformed');
    expectNoPan(e, fixturePan('mir-garbled-record'));
  });

  it('a truncated GPO answer gives card.tlv-malformed', async () => {
    const e = await refusal(() => rig.present(cardSpec('mir-truncated-gpo')));
    expect(e.code).toBe('card.tlv-malformed');
  });

  it('a PAN failing the Luhn check gives card.bad-pan, without the PAN', async () => {
    const e = await refusal(() => rig.present(cardSpec('mir-bad-luhn')));
    expect(e.code).toBe('card.bad-pan');
    expectNoPan(e, fixturePan('mir-bad-luhn'));
  });

  const expected: Record<TraceName, string> = {
    interac: 'interac',
    'locked-card': 'cb',
    'mastercard-cb-cobadge': 'cb',
    'visa-cb-cobadge': 'cb',
  };
  describe('real card traces', () => {
    for (const name of TRACE_NAMES) {
      it(`${name}: refused as card.not-mir (${expected[name]})`, async () => {
        const e = await refusal(() => rig.present(traceSpec(name)));
        expect(e.code).toBe('card.not-mir');
        expect(e.context?.scheme).toBe(expected[name]);
        expect(JSON.stringify(e)).not.toMatch(/9999999999/);
      });
    }
  });
}
