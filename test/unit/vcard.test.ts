import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findAllTlv, findTlv, parseDol, parseTlv } from '../../device/emv/tlv.js';
import { InProcessChannel, openInProcessCard } from '../../device/vcard/inprocess.js';
import { createVirtualCard, parseVCardSpec, type VCardSpec } from '../../device/vcard/spec.js';
import type { VCardAnswer, VirtualCard } from '../../device/vcard/types.js';
import { RcError } from '../../protocol/errors.js';
import { tracePath } from '../suites/card-fixtures.js';
import { MIR_PAN, MIR_PAN_19 } from '../support/pans.js';

const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const MIR = { kind: 'emv', pan: MIR_PAN, expiry: '2028-12', psn: '01' } as const satisfies VCardSpec;
const SELECT_PPSE = h('00A404000E325041592E5359532E444446303100');
const SELECT_MIR = h('00A4040007A000000658101000');

function resp(a: VCardAnswer): { data: Buffer; sw: string } {
  if (a.kind !== 'response') throw new Error(`expected a response, got ${a.kind}`);
  const b = Buffer.from(a.data);
  return { data: b.subarray(0, -2), sw: b.subarray(-2).toString('hex').toUpperCase() };
}

function powered(spec: VCardSpec): VirtualCard {
  const c = createVirtualCard(spec);
  c.powerOn();
  return c;
}

function gpoFor(card: VirtualCard): Buffer {
  // PDOL length from the FCI
  const fci = parseTlv(resp(card.transmit(SELECT_MIR)).data);
  const dol = parseDol(findTlv(fci, '9F38')!.value);
  const n = dol.reduce((s, e) => s + e.length, 0);
  return Buffer.concat([h('80A80000'), Buffer.from([n + 2, 0x83, n]), Buffer.alloc(n), h('00')]);
}

describe('VCardSpec', () => {
  it('is plain JSON: a spec survives stringify/parse and builds the same card', () => {
    const spec: VCardSpec = { ...MIR, par: 'PAR1', faults: { wrongLe: true } };
    const copy = JSON.parse(JSON.stringify(spec)) as VCardSpec;
    expect(parseVCardSpec(copy)).toEqual(parseVCardSpec(spec));
  });

  it('refuses bad specs with input.invalid', () => {
    const bad: unknown[] = [
      { ...MIR, pan: '22001234' },
      { ...MIR, pan: '2200123456789019000' + '1' },
      { ...MIR, expiry: '2028-13' },
      { ...MIR, gpoFormat: 3 },
      { ...MIR, extra: true },
      { kind: 'trace', trace: { exchanges: [{ command: '00A', response: '9000' }] } },
      { kind: 'nope' },
    ];
    for (const b of bad) {
      expect(() => createVirtualCard(b as VCardSpec)).toThrow(RcError);
      try {
        createVirtualCard(b as VCardSpec);
      } catch (e) {
        expect((e as RcError).code).toBe('input.invalid');
      }
    }
    expect(() => createVirtualCard({ ...MIR, records: [{ sfi: 1, record: 1, tags: ['9F99'] }] })).toThrow(/cannot fill/);
  });
});

describe('synthetic EMV card', () => {
  it('lists its applications with priorities in the PPSE (6F/A5/BF0C/61)', () => {
    const card = powered({
      ...MIR,
      applications: [
        { aid: 'A0000000031010', label: 'VISA', priority: 1 },
        { aid: 'A0000006581010', label: 'MIR', priority: 2 },
      ],
    });
    const r = resp(card.transmit(SELECT_PPSE));
    expect(r.sw).toBe('9000');
    const tl = parseTlv(r.data);
    expect(tl[0]!.tag).toBe('6F');
    const apps = findAllTlv(tl, '61').map((e) => ({
      aid: Buffer.from(findTlv(e.children, '4F')!.value).toString('hex').toUpperCase(),
      prio: findTlv(e.children, '87')!.value[0],
    }));
    expect(apps).toEqual([
      { aid: 'A0000000031010', prio: 1 },
      { aid: 'A0000006581010', prio: 2 },
    ]);
  });

  it('answers 6A82 to the PPSE when it has none, and to an AID it does not hold', () => {
    const card = powered({ ...MIR, ppse: false });
    expect(resp(card.transmit(SELECT_PPSE)).sw).toBe('6A82');
    expect(resp(card.transmit(h('00A4040007A000000003101000'))).sw).toBe('6A82');
    expect(resp(card.transmit(SELECT_MIR)).sw).toBe('9000');
  });

  it('refuses GPO before SELECT (6985) and a PDOL of the wrong length (6700)', () => {
    const card = powered(MIR);
    expect(resp(card.transmit(h('80A8000002830000'))).sw).toBe('6985');
    card.transmit(SELECT_MIR);
    expect(resp(card.transmit(h('80A8000002830000'))).sw).toBe('6700');
  });

  it('answers GPO in format 1 (80: AIP ‖ AFL) or format 2 (77: 82, 94)', () => {
    const f1 = powered({ ...MIR, gpoFormat: 1 });
    const a1 = parseTlv(resp(f1.transmit(gpoFor(f1))).data);
    expect(a1[0]!.tag).toBe('80');
    expect(Buffer.from(a1[0]!.value).toString('hex')).toBe('1980' + '08010100' + '10010100' + '18010100');
    const f2 = powered({ ...MIR, gpoFormat: 2 });
    const a2 = parseTlv(resp(f2.transmit(gpoFor(f2))).data);
    expect(a2[0]!.tag).toBe('77');
    expect(Buffer.from(findTlv(a2, '94')!.value).toString('hex')).toBe('080101001001010018010100');
  });

  it('builds the AFL from the record layout (one entry per run of records of an SFI)', () => {
    const card = powered({
      ...MIR,
      gpoFormat: 2,
      records: [
        { sfi: 2, record: 1, tags: ['5A'] },
        { sfi: 2, record: 2, tags: ['5F24'] },
        { sfi: 2, record: 4, tags: ['5F34'] },
        { sfi: 1, record: 3, tags: ['57'] },
      ],
    });
    const a = parseTlv(resp(card.transmit(gpoFor(card))).data);
    expect(Buffer.from(findTlv(a, '94')!.value).toString('hex')).toBe('08030300' + '10010200' + '10040400');
  });

  it('serves its records as 70 templates, 6A83 for a record it lacks', () => {
    const card = powered({ ...MIR, panLocation: 'track2-only', par: 'PAR-1' });
    card.transmit(SELECT_MIR);
    const r1 = parseTlv(resp(card.transmit(h('00B2010C00'))).data);
    expect(r1[0]!.tag).toBe('70');
    expect(Buffer.from(findTlv(r1, '57')!.value).toString('hex').toUpperCase()).toBe('2200123456789019D28122010000000000');
    const r2 = parseTlv(resp(card.transmit(h('00B2011400'))).data);
    expect(findTlv(r2, '5A')).toBeUndefined(); // track2-only
    expect(Buffer.from(findTlv(r2, '5F24')!.value).toString('hex')).toBe('281231');
    expect(Buffer.from(findTlv(r2, '9F24')!.value).toString('ascii')).toBe('PAR-1');
    expect(resp(card.transmit(h('00B2020C00'))).sw).toBe('6A83');
  });

  it('pads an odd-length PAN with F in 5A and 57', () => {
    const card = powered({ ...MIR, pan: MIR_PAN_19 });
    card.transmit(SELECT_MIR);
    const r2 = parseTlv(resp(card.transmit(h('00B2011400'))).data);
    expect(Buffer.from(findTlv(r2, '5A')!.value).toString('hex').toUpperCase()).toBe('2200123456789012341F');
  });

  it('answers 6D00 to an unknown instruction and 6E00 to an unknown class', () => {
    const card = powered(MIR);
    expect(resp(card.transmit(h('00CA9F1700'))).sw).toBe('6D00');
    expect(resp(card.transmit(h('B0CA9F1700'))).sw).toBe('6E00');
  });
});

describe('recorded trace card', () => {
  const trace = {
    exchanges: [
      { command: '00A404000E325041592E5359532E444446303100', response: '6F0A840E3250415900' + '9000' },
      { command: '00A4040007A000000042101000', response: '6F0484020102' + '9000' },
      { command: '80A8000002830000', response: '800A198008010100100101009000' },
      { command: '00B2011400', response: '70035A01119000' },
    ],
  };

  it('replays by header and data, ignoring Le; GPO by header only; unknown → 6D00', () => {
    const card = powered({ kind: 'trace', trace });
    expect(resp(card.transmit(h('00A4040007A0000000421010'))).sw).toBe('9000'); // no Le
    expect(resp(card.transmit(h('00A4040007A0000000031010'))).sw).toBe('6D00'); // other AID
    expect(resp(card.transmit(h('80A80000098307112233445566778800'))).sw).toBe('9000'); // other PDOL data
    expect(resp(card.transmit(h('00B2011400'))).data.toString('hex')).toBe('70035a0111');
    expect(resp(card.transmit(h('00B2021400'))).sw).toBe('6D00');
  });

  it('loads a trace from a file path, and refuses a bad file with input.invalid', () => {
    const card = powered({ kind: 'trace', trace: tracePath('interac') });
    expect(resp(card.transmit(SELECT_PPSE)).sw).toBe('9000');
    const dir = mkdtempSync(join(tmpdir(), 'rc-vcard-'));
    writeFileSync(join(dir, 'bad.json'), '{"exchanges": 3}');
    expect(() => createVirtualCard({ kind: 'trace', trace: join(dir, 'bad.json') })).toThrow(/invalid trace/);
    expect(() => createVirtualCard({ kind: 'trace', trace: join(dir, 'missing.json') })).toThrow(/cannot read/);
  });
});

describe('faults', () => {
  it('removeAfterApdus N: answers N APDUs, then leaves the field', () => {
    const card = powered({ ...MIR, faults: { removeAfterApdus: 2 } });
    expect(card.transmit(SELECT_PPSE).kind).toBe('response');
    expect(card.transmit(SELECT_MIR).kind).toBe('response');
    expect(card.transmit(SELECT_MIR).kind).toBe('remove');
  });

  it('silentAt and statusWordAt hit exactly the N-th APDU; the count restarts on power-on', () => {
    const card = powered({ ...MIR, faults: { silentAt: 2, statusWordAt: { apdu: 3, sw: '6A82' } } });
    expect(card.transmit(SELECT_PPSE).kind).toBe('response');
    expect(card.transmit(SELECT_MIR).kind).toBe('silent');
    expect(resp(card.transmit(SELECT_MIR)).sw).toBe('6A82');
    expect(resp(card.transmit(SELECT_MIR)).sw).toBe('9000');
    card.powerOn();
    expect(card.transmit(SELECT_PPSE).kind).toBe('response');
    expect(card.transmit(SELECT_PPSE).kind).toBe('silent');
  });

  it('truncateAt and garbleTlvAt break the TLV of the N-th answer only', () => {
    const t = powered({ ...MIR, faults: { truncateAt: 1 } });
    const r = resp(t.transmit(SELECT_PPSE));
    expect(r.sw).toBe('9000');
    expect(() => parseTlv(r.data)).toThrow(/past the end/);
    expect(() => parseTlv(resp(t.transmit(SELECT_PPSE)).data)).not.toThrow();
    const g = powered({ ...MIR, faults: { garbleTlvAt: 1 } });
    expect(() => parseTlv(resp(g.transmit(SELECT_PPSE)).data)).toThrow(RcError);
  });

  it('needGetResponse: 61xx first, the data on GET RESPONSE, in pieces when Le is short', () => {
    const card = powered({ ...MIR, faults: { needGetResponse: true } });
    const plain = resp(powered(MIR).transmit(SELECT_PPSE)).data;
    const first = resp(card.transmit(SELECT_PPSE));
    expect(first.sw).toBe(`61${plain.length.toString(16).toUpperCase().padStart(2, '0')}`);
    const part = resp(card.transmit(h('00C0000010')));
    expect(part.data.length).toBe(16);
    expect(part.sw).toBe(`61${(plain.length - 16).toString(16).toUpperCase().padStart(2, '0')}`);
    const rest = resp(card.transmit(Buffer.from([0, 0xc0, 0, 0, plain.length - 16])));
    expect(rest.sw).toBe('9000');
    expect(Buffer.concat([part.data, rest.data]).equals(plain)).toBe(true);
    expect(resp(card.transmit(h('00C0000010'))).sw).toBe('6985'); // nothing pending
  });

  it('wrongLe: 6Cxx unless Le is exactly the length, then the data', () => {
    const card = powered({ ...MIR, faults: { wrongLe: true } });
    const first = resp(card.transmit(SELECT_PPSE));
    expect(first.sw.slice(0, 2)).toBe('6C');
    const le = parseInt(first.sw.slice(2), 16);
    const again = Buffer.from(SELECT_PPSE);
    again[again.length - 1] = le;
    const r = resp(card.transmit(again));
    expect(r.sw).toBe('9000');
    expect(r.data.length).toBe(le);
  });

  it('compose on a trace card too', () => {
    const card = powered({ kind: 'trace', trace: tracePath('interac'), faults: { statusWordAt: { apdu: 1, sw: '6A82' } } });
    expect(resp(card.transmit(SELECT_PPSE)).sw).toBe('6A82');
  });
});

describe('in-process channel', () => {
  it('after a removal every transmit fails with card.removed', async () => {
    const ch = openInProcessCard({ ...MIR, faults: { removeAfterApdus: 1 } });
    await expect(ch.transmit(SELECT_PPSE, 100)).resolves.toBeInstanceOf(Uint8Array);
    await expect(ch.transmit(SELECT_MIR, 100)).rejects.toMatchObject({ code: 'card.removed' });
    await expect(ch.transmit(SELECT_PPSE, 100)).rejects.toMatchObject({ code: 'card.removed' });
    const other = openInProcessCard(MIR);
    other.remove();
    await expect(other.transmit(SELECT_PPSE, 100)).rejects.toMatchObject({ code: 'card.removed' });
  });

  it('a silent card fails with card.timeout after timeoutMs', async () => {
    const ch = openInProcessCard({ ...MIR, faults: { silentAt: 1 } });
    const t0 = performance.now();
    await expect(ch.transmit(SELECT_PPSE, 40)).rejects.toMatchObject({ code: 'card.timeout' });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(35);
  });

  it('hands out a copy of the answer, so wiping it leaves the card intact', async () => {
    const ch = new InProcessChannel(createVirtualCard(MIR));
    const a = await ch.transmit(SELECT_PPSE, 100);
    a.fill(0);
    const b = await ch.transmit(SELECT_PPSE, 100);
    expect(b[0]).toBe(0x6f);
  });
});
