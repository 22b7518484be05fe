import { describe, expect, it } from 'vitest';
import { fillPdol } from '../../device/emv/pdol.js';
import { encodeTlv, tlv } from '../../device/emv/tlv.js';
import { readMirCard } from '../../device/emv/read.js';
import { checkPan, expiryFrom5F24, luhnOk, panFrom5A, parseTrack2, psnFrom5F34 } from '../../device/emv/card-data.js';
import { schemeOfAid } from '../../device/emv/schemes.js';
import type { CardChannel } from '../../device/reader/types.js';
import { InProcessChannel, openInProcessCard } from '../../device/vcard/inprocess.js';
import { createVirtualCard, type VCardSpec } from '../../device/vcard/spec.js';
import type { VirtualCard } from '../../device/vcard/types.js';
import { RcError } from '../../protocol/errors.js';
import { expectRcError } from '../support/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { MIR_PAN, MIR_PAN_BAD_LUHN, VISA_PAN } from '../support/pans.js';

const NOW = new Date('2026-11-24T12:00:00Z');
const OPTS = { now: NOW, tokenKey: DEV_TOKEN_KEY };
const MIR = { kind: 'emv', pan: MIR_PAN, expiry: '2028-12', psn: '01' } as const satisfies VCardSpec;
const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** A channel that records every command and keeps every response it handed out. */
class Recording implements CardChannel {
  commands: string[] = [];
  responses: Uint8Array[] = [];
  constructor(private readonly inner: CardChannel) {}
  async transmit(apdu: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    this.commands.push(Buffer.from(apdu).toString('hex').toUpperCase());
    const r = await this.inner.transmit(apdu, timeoutMs);
    this.responses.push(r);
    return r;
  }
}

function recording(spec: VCardSpec): Recording {
  return new Recording(openInProcessCard(spec));
}

describe('readMirCard: the APDU conversation', () => {
  it('sends PPSE, SELECT, GPO and READ RECORDs with the expected headers', async () => {
    const ch = recording({ ...MIR, gpoFormat: 1 });
    await readMirCard(ch, OPTS);
    expect(ch.commands[0]).toBe('00A404000E325041592E5359532E444446303100');
    expect(ch.commands[1]).toBe('00A4040007A000000658101000');
    expect(ch.commands[2]!.startsWith('80A80000')).toBe(true);
    expect(ch.commands.slice(3)).toEqual(['00B2010C00', '00B2011400']);
  });

  it('stops reading records as soon as PAN, expiry and PSN are known', async () => {
    const ch = recording({
      ...MIR,
      records: [
        { sfi: 1, record: 1, tags: ['5A', '5F24', '5F34'] },
        { sfi: 1, record: 2, tags: ['5F20'] },
        { sfi: 2, record: 1, tags: ['9F46'] },
      ],
    });
    const r = await readMirCard(ch, OPTS);
    expect(r.apdus).toBe(4);
    expect(ch.commands.slice(3)).toEqual(['00B2010C00']);
  });

  it('reads every AFL record before concluding a card has no PSN', async () => {
    const ch = recording({ kind: 'emv', pan: MIR.pan, expiry: MIR.expiry });
    const r = await readMirCard(ch, OPTS);
    expect(r.psn).toBeNull();
    expect(ch.commands.slice(3)).toEqual(['00B2010C00', '00B2011400', '00B2011C00']);
    expect(r.apdus).toBe(6);
  });

  it('takes PAN, expiry and PSN from a format 2 GPO answer without reading records when they are there', async () => {
    const card = createVirtualCard(MIR);
    // GPO format 2 carrying AIP, AFL, Track 2 equivalent data and the PSN itself
    const gpo = encodeTlv([tlv('77', [tlv('82', '1980'), tlv('94', '08010100'), tlv('57', '2200123456789019D2812201'), tlv('5F34', '03')])]);
    const rich: VirtualCard = {
      ...card,
      transmit: (a) => (a[1] === 0xa8 ? { kind: 'response', data: Buffer.concat([gpo, h('9000')]) } : card.transmit(a)),
    };
    const ch = new Recording(new InProcessChannel(rich));
    const r = await readMirCard(ch, OPTS);
    expect(r).toMatchObject({ maskedPan: '220012******9019', expiry: '2028-12', psn: '03' });
    expect(r.apdus).toBe(3);
    expect(ch.commands.some((c) => c.startsWith('00B2'))).toBe(false);
  });

  it('fills the PDOL the card asks for, zero-filling tags it does not know', async () => {
    const pdol = [
      { tag: '9F66', length: 4 },
      { tag: '9F4E', length: 7 }, // merchant name: unknown to us
      { tag: '9A', length: 3 },
      { tag: '9F1A', length: 2 },
    ];
    const ch = recording({ ...MIR, pdol });
    await readMirCard(ch, OPTS);
    const gpo = h(ch.commands[2]!);
    expect(gpo.subarray(5, 7).toString('hex')).toBe('8310');
    const data = gpo.subarray(7, 7 + 16);
    expect(data.subarray(0, 4).toString('hex')).toBe('36004000');
    expect(data.subarray(4, 11).toString('hex')).toBe('00000000000000');
    expect(data.subarray(11, 14).toString('hex')).toBe('261124');
    expect(data.subarray(14, 16).toString('hex')).toBe('0643');
  });

  it('sends GPO with an empty 83 template when the card has no PDOL', async () => {
    const ch = recording({ ...MIR, pdol: [] });
    await readMirCard(ch, OPTS);
    expect(ch.commands[2]).toBe('80A80000028300' + '00');
  });

  it('answers to 61xx with GET RESPONSE and counts those APDUs', async () => {
    const ch = recording({ ...MIR, faults: { needGetResponse: true } });
    const r = await readMirCard(ch, OPTS);
    expect(r.apdus).toBe(10);
    expect(ch.commands.filter((c) => c.startsWith('00C00000'))).toHaveLength(5);
  });

  it('repeats a command with the Le of a 6Cxx answer and counts the repeat', async () => {
    const ch = recording({ ...MIR, faults: { wrongLe: true } });
    const r = await readMirCard(ch, OPTS);
    expect(r.apdus).toBe(10);
    // every command goes twice: first with Le 00, then with the Le the card named
    expect(ch.commands[0]).toBe('00A404000E325041592E5359532E444446303100');
    expect(ch.commands[1]).toMatch(/^00A404000E325041592E5359532E4444463031[0-9A-F]{2}$/);
    expect(ch.commands[2]).toBe('00A4040007A000000658101000');
    expect(ch.commands[3]).toMatch(/^00A4040007A0000006581010[0-9A-F]{2}$/);
    expect(ch.commands[3]).not.toMatch(/00$/);
  });

  it('refuses the card when its answers need more than maxApdus exchanges', async () => {
    const e = await expectRcError(readMirCard(recording({ ...MIR, faults: { needGetResponse: true } }), { ...OPTS, maxApdus: 6 }));
    expect(e.code).toBe('card.too-many-apdus');
  });

  it('a card answering 61xx forever stops at maxApdus, not in a loop', async () => {
    const endless: VirtualCard = { atr: () => h('3B80800101'), powerOn() {}, transmit: () => ({ kind: 'response', data: h('6110') }) };
    const e = await expectRcError(readMirCard(new InProcessChannel(endless), OPTS));
    expect(e.code).toBe('card.too-many-apdus');
    expect(e.context).toEqual({ maxApdus: 16 });
  });

  it('an empty response means the card went away: card.removed', async () => {
    const empty: CardChannel = { transmit: async () => new Uint8Array(0) };
    expect((await expectRcError(readMirCard(empty, OPTS))).code).toBe('card.removed');
    const oneByte: CardChannel = { transmit: async () => new Uint8Array([0x90]) };
    expect((await expectRcError(readMirCard(oneByte, OPTS))).code).toBe('card.removed');
  });

  it('a card that stops answering gives card.timeout after the timeout', async () => {
    const t0 = Date.now();
    const e = await expectRcError(readMirCard(openInProcessCard({ ...MIR, faults: { silentAt: 3 } }), { ...OPTS, timeoutMs: 30 }));
    expect(e.code).toBe('card.timeout');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
  });

  it('a channel failing with a non-coded error becomes reader.transmit-failed', async () => {
    const broken: CardChannel = {
      transmit: async () => {
        throw new Error('SCardTransmit: 0x80100016');
      },
    };
    expect((await expectRcError(readMirCard(broken, OPTS))).code).toBe('reader.transmit-failed');
  });

  it('an error status word on SELECT or GPO gives card.status-word with the SW', async () => {
    const sel = await expectRcError(readMirCard(openInProcessCard({ ...MIR, faults: { statusWordAt: { apdu: 2, sw: '6985' } } }), OPTS));
    expect(sel.code).toBe('card.status-word');
    expect(sel.context).toMatchObject({ command: 'SELECT', sw: '6985' });
    const gpo = await expectRcError(readMirCard(openInProcessCard({ ...MIR, faults: { statusWordAt: { apdu: 3, sw: '6984' } } }), OPTS));
    expect(gpo.context).toMatchObject({ command: 'GET PROCESSING OPTIONS', sw: '6984' });
    const rec = await expectRcError(readMirCard(openInProcessCard({ ...MIR, faults: { statusWordAt: { apdu: 4, sw: '6A83' } } }), OPTS));
    expect(rec.context).toMatchObject({ command: 'READ RECORD', sw: '6A83', sfi: 1, record: 1 });
  });

  it('a PPSE listing only an unknown RID is refused as not-mir (unknown)', async () => {
    const e = await expectRcError(readMirCard(openInProcessCard({ ...MIR, applications: [{ aid: 'A0000009990101', priority: 1 }] }), OPTS));
    expect(e.code).toBe('card.not-mir');
    expect(e.context).toEqual({ scheme: 'unknown', aid: 'A0000009990101' });
  });

  it('a not-Mir card costs one APDU: only the PPSE is read', async () => {
    const ch = recording({ ...MIR, scheme: 'mastercard', pan: '5500000000000004' });
    const e = await expectRcError(readMirCard(ch, OPTS));
    expect(e.context).toEqual({ scheme: 'mastercard', aid: 'A0000000041010' });
    expect(ch.commands).toHaveLength(1);
  });

  it('a card with neither PPSE nor a Mir application gives card.no-application', async () => {
    const e = await expectRcError(readMirCard(openInProcessCard({ ...MIR, scheme: 'visa', pan: VISA_PAN, ppse: false }), OPTS));
    expect(e.code).toBe('card.no-application');
    expect(e.context).toMatchObject({ ppseSw: '6A82', lastSw: '6A82' });
  });

  it('picks the highest-priority Mir application among several Mir ones', async () => {
    const r = await readMirCard(
      openInProcessCard({
        ...MIR,
        applications: [
          { aid: 'A0000006582010', priority: 3 },
          { aid: 'A0000000031010', priority: 1 },
          { aid: 'A0000006581010', priority: 2 },
        ],
      }),
      OPTS,
    );
    expect(r.aid).toBe('A0000006581010');
  });

  it('a record that is not a 70 template gives card.bad-response', async () => {
    const card = createVirtualCard({ ...MIR, gpoFormat: 1 });
    const odd: VirtualCard = {
      ...card,
      transmit: (a) => (a[1] === 0xb2 ? { kind: 'response', data: h('5A0822001234567890199000') } : card.transmit(a)),
    };
    const e = await expectRcError(readMirCard(new InProcessChannel(odd), OPTS));
    expect(e.code).toBe('card.bad-response');
    expect(JSON.stringify(e)).not.toContain(MIR_PAN);
  });

  it('a card without any card number gives card.missing-data', async () => {
    const e = await expectRcError(readMirCard(openInProcessCard({ ...MIR, records: [{ sfi: 1, record: 1, tags: ['5F24', '5F34'] }] }), OPTS));
    expect(e.code).toBe('card.missing-data');
    expect(e.context).toMatchObject({ missing: 'pan' });
  });

  it('wipes every response buffer (they held the PAN) after a read and after a refusal', async () => {
    const ok = recording(MIR);
    await readMirCard(ok, OPTS);
    expect(ok.responses.length).toBe(5);
    for (const r of ok.responses) expect(r.every((b) => b === 0)).toBe(true);
    const bad = recording({ ...MIR, pan: MIR_PAN_BAD_LUHN });
    await expectRcError(readMirCard(bad, OPTS));
    for (const r of bad.responses) expect(r.every((b) => b === 0)).toBe(true);
  });
});

describe('card data decoding', () => {
  it('decodes a BCD PAN with F padding (5A) and refuses non-digits', () => {
    expect(panFrom5A(h('2200123456789012341F')).toString()).toBe('2200123456789012341');
    expect(() => panFrom5A(h('22001A'))).toThrow(RcError);
    expect(() => panFrom5A(h('22F012'))).toThrow(RcError);
  });

  it('splits Track 2 equivalent data into PAN and YYMM expiry', () => {
    const t2 = parseTrack2(h('2200123456789019D28122010000000000'));
    expect(t2.pan.toString()).toBe('2200123456789019');
    expect(t2.expiry).toBe('2028-12');
    expect(() => parseTrack2(h('2200123456789019'))).toThrow(RcError);
    expect(() => parseTrack2(h('2200123456789019D2'))).toThrow(RcError);
    expect(() => parseTrack2(h('2200123456789019D2813201'))).toThrow(/month/);
  });

  it('checks the PAN: 12..19 digits and Luhn', () => {
    expect(luhnOk(Buffer.from('2200123456789019'))).toBe(true);
    expect(luhnOk(Buffer.from('2200123456789018'))).toBe(false);
    expect(() => checkPan(Buffer.from('22001234567'), '5A')).toThrow(RcError);
    expect(() => checkPan(Buffer.from('2200123456789018'), '5A')).toThrow(/Luhn/);
  });

  it('decodes the expiry (5F24) and PSN (5F34)', () => {
    expect(expiryFrom5F24(h('281231'))).toBe('2028-12');
    expect(() => expiryFrom5F24(h('281331'))).toThrow(RcError);
    expect(() => expiryFrom5F24(h('2812'))).toThrow(RcError);
    expect(psnFrom5F34(h('01'))).toBe('01');
    expect(psnFrom5F34(h('1A'))).toBe('1A');
  });

  it('names schemes by RID', () => {
    expect(schemeOfAid('A0000006581010')).toBe('mir');
    expect(schemeOfAid('a0000000031010')).toBe('visa');
    expect(schemeOfAid('A0000003330101')).toBe('unionpay');
    expect(schemeOfAid('A0000001234567')).toBe('unknown');
  });

  it('fits terminal values to the PDOL lengths (numeric right-aligned, others left)', () => {
    const d = fillPdol(
      [
        { tag: '9F02', length: 4 },
        { tag: '9F1A', length: 3 },
        { tag: '9F66', length: 2 },
        { tag: '9F37', length: 4 },
        { tag: '9C', length: 1 },
        { tag: '95', length: 5 },
      ],
      NOW,
    );
    expect(d.subarray(0, 4).toString('hex')).toBe('00000000');
    expect(d.subarray(4, 7).toString('hex')).toBe('000643');
    expect(d.subarray(7, 9).toString('hex')).toBe('3600');
    expect(d.length).toBe(4 + 3 + 2 + 4 + 1 + 5);
    const un1 = d.subarray(9, 13).toString('hex');
    const un2 = fillPdol([{ tag: '9F37', length: 4 }], NOW).toString('hex');
    expect(un1).not.toBe(un2);
  });
});
