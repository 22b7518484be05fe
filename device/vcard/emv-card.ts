import { ErrorCode, RcError } from '../../protocol/errors.js';
import { encodeTlv, tagBytes, tlv, type TlvNode } from '../emv/tlv.js';
import type { EmvCardSpec, EmvRecordSpec, SyntheticScheme } from './spec.js';
import type { VCardAnswer, VirtualCard } from './types.js';

/**
 * A synthetic EMV contactless card built from parameters. Its answers are real
 * EMV structures written with the TLV encoder: FCI templates (6F/A5/BF0C/61),
 * GPO format 1 (80: AIP ‖ AFL) or 2 (77: 82, 94), records as 70 templates.
 */

/** ISO/IEC 14443-4 card through a PC/SC reader, no historical bytes (PC/SC part 3). */
export const DEFAULT_ATR = '3B80800101';

const SCHEME_APP: Record<SyntheticScheme, { aid: string; label: string }> = {
  mir: { aid: 'A0000006581010', label: 'MIR' },
  visa: { aid: 'A0000000031010', label: 'VISA' },
  mastercard: { aid: 'A0000000041010', label: 'MASTERCARD' },
};

/** Typical Mir contactless PDOL. */
export const DEFAULT_PDOL: readonly { tag: string; length: number }[] = [
  { tag: '9F66', length: 4 },
  { tag: '9F02', length: 6 },
  { tag: '9F37', length: 4 },
  { tag: '5F2A', length: 2 },
  { tag: '9A', length: 3 },
];

/** Card data in two records of two SFIs (a plain card reads both), ODA data in a third that the reader can skip. */
export const DEFAULT_RECORDS: readonly EmvRecordSpec[] = [
  { sfi: 1, record: 1, tags: ['57', '5F20'] },
  { sfi: 2, record: 1, tags: ['5A', '5F24', '5F25', '5F28', '5F34', '9F07', '9F24'] },
  { sfi: 3, record: 1, tags: ['8F', '9F32', '9F46'] },
];

const AIP = Buffer.from('1980', 'hex');
const PPSE_NAME = Buffer.from('2PAY.SYS.DDF01', 'ascii');

function sw(code: number): VCardAnswer {
  return { kind: 'response', data: Buffer.from([code >> 8, code & 0xff]) };
}

function ok(data: Uint8Array): VCardAnswer {
  return { kind: 'response', data: Buffer.concat([data, Buffer.from([0x90, 0x00])]) };
}

function bcdDigits(digits: string): Buffer {
  const s = digits.length % 2 === 0 ? digits : `${digits}F`;
  return Buffer.from(s, 'hex');
}

function lastDay(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Command APDU parts (short APDUs only). */
export function splitApdu(apdu: Uint8Array): { header: Buffer; data: Buffer; le: number | null } {
  const b = Buffer.from(apdu);
  const header = b.subarray(0, 4);
  if (b.length <= 4) return { header, data: Buffer.alloc(0), le: null };
  if (b.length === 5) return { header, data: Buffer.alloc(0), le: b[4]! };
  const lc = b[4]!;
  const data = b.subarray(5, 5 + lc);
  const le = b.length > 5 + lc ? b[5 + lc]! : null;
  return { header, data, le };
}

export function createEmvCard(spec: EmvCardSpec): VirtualCard {
  const apps = (spec.applications ?? [{ aid: SCHEME_APP[spec.scheme].aid, label: SCHEME_APP[spec.scheme].label, priority: 1 }]).map((a) => ({
    aid: Buffer.from(a.aid, 'hex'),
    label: a.label,
    priority: a.priority,
  }));
  const pdol = spec.pdol ?? DEFAULT_PDOL;
  const pdolLength = pdol.reduce((n, e) => n + e.length, 0);
  for (const e of pdol) tagBytes(e.tag);
  const layout = spec.records ?? DEFAULT_RECORDS;

  const [yyyy, mm] = spec.expiry.split('-').map(Number) as [number, number];
  const yymm = `${String(yyyy % 100).padStart(2, '0')}${String(mm).padStart(2, '0')}`;
  const yymmdd = `${yymm}${String(lastDay(yyyy, mm)).padStart(2, '0')}`;

  /** The value of each data element the card can put in a record. */
  function element(tag: string): TlvNode | null {
    switch (tag) {
      case '57': {
        const t2 = `${spec.pan}D${yymm}2010000000000`;
        return tlv('57', bcdDigits(t2));
      }
      case '5A':
        return spec.panLocation === '5A' ? tlv('5A', bcdDigits(spec.pan)) : null;
      case '5F24':
        return tlv('5F24', yymmdd);
      case '5F34':
        return spec.psn === undefined ? null : tlv('5F34', spec.psn);
      case '9F24':
        return spec.par === undefined ? null : tlv('9F24', Buffer.from(spec.par, 'ascii'));
      case '5F20':
        return tlv('5F20', Buffer.from('CARDHOLDER/VIRTUAL', 'ascii'));
      case '5F25':
        return tlv('5F25', `${String((yyyy - 4) % 100).padStart(2, '0')}${String(mm).padStart(2, '0')}01`);
      case '5F28':
        return tlv('5F28', '0643');
      case '9F07':
        return tlv('9F07', 'FF00');
      case '8C':
        return tlv('8C', '9F02069F03069F1A0295055F2A029A039C019F3704');
      case '8D':
        return tlv('8D', '910A8A0295059F3704');
      case '8F':
        return tlv('8F', '01');
      case '9F32':
        return tlv('9F32', '03');
      case '9F46':
        return tlv('9F46', Buffer.alloc(128, 0x5a));
      default:
        throw new RcError(ErrorCode.InputInvalid, 'virtual card record holds a tag it cannot fill', { tag });
    }
  }

  const records = new Map<string, Buffer>();
  for (const r of layout) {
    const key = `${r.sfi}/${r.record}`;
    if (records.has(key)) throw new RcError(ErrorCode.InputInvalid, 'virtual card record listed twice', { sfi: r.sfi, record: r.record });
    const children = r.tags.map((t) => element(t.toUpperCase())).filter((x): x is TlvNode => x !== null);
    records.set(key, encodeTlv([tlv('70', children)]));
  }

  // AFL: one entry per run of consecutive records of one SFI
  const afl: number[] = [];
  const bySfi = new Map<number, number[]>();
  for (const r of layout) bySfi.set(r.sfi, [...(bySfi.get(r.sfi) ?? []), r.record]);
  for (const [sfi, recs] of [...bySfi.entries()].sort((a, b) => a[0] - b[0])) {
    recs.sort((a, b) => a - b);
    let start = recs[0]!;
    let prev = start;
    for (const rec of [...recs.slice(1), -1]) {
      if (rec === prev + 1) {
        prev = rec;
        continue;
      }
      afl.push(sfi << 3, start, prev, 0);
      start = rec;
      prev = rec;
    }
  }
  const aflBytes = Buffer.from(afl);

  const ppseAnswer = encodeTlv([
    tlv('6F', [
      tlv('84', PPSE_NAME),
      tlv('A5', [
        tlv(
          'BF0C',
          apps.map((a) =>
            tlv('61', [
              tlv('4F', a.aid),
              ...(a.label ? [tlv('50', Buffer.from(a.label, 'ascii'))] : []),
              ...(a.priority ? [tlv('87', Buffer.from([a.priority]))] : []),
            ]),
          ),
        ),
      ]),
    ]),
  ]);

  const pdolBytes = Buffer.concat(pdol.map((e) => Buffer.concat([tagBytes(e.tag), Buffer.from([e.length])])));
  const fciOf = (a: (typeof apps)[number]): Buffer =>
    encodeTlv([
      tlv('6F', [
        tlv('84', a.aid),
        tlv('A5', [
          ...(a.label ? [tlv('50', Buffer.from(a.label, 'ascii'))] : []),
          ...(a.priority ? [tlv('87', Buffer.from([a.priority]))] : []),
          ...(pdol.length > 0 ? [tlv('9F38', pdolBytes)] : []),
          tlv('5F2D', Buffer.from('ruen', 'ascii')),
        ]),
      ]),
    ]);

  const gpoAnswer =
    spec.gpoFormat === 1 ? encodeTlv([tlv('80', Buffer.concat([AIP, aflBytes]))]) : encodeTlv([tlv('77', [tlv('82', AIP), tlv('94', aflBytes)])]);

  const atr = Buffer.from(spec.atr ?? DEFAULT_ATR, 'hex');
  let selected: (typeof apps)[number] | null = null;

  return {
    atr: () => Buffer.from(atr),
    powerOn() {
      selected = null;
    },
    transmit(apdu: Uint8Array): VCardAnswer {
      if (apdu.length < 4) return sw(0x6700);
      const { header, data } = splitApdu(apdu);
      const [cla, ins, p1, p2] = [header[0]!, header[1]!, header[2]!, header[3]!];
      if (apdu.length > 5 && apdu.length < 5 + apdu[4]!) return sw(0x6700);
      if (cla === 0x00 && ins === 0xa4) {
        if (p1 !== 0x04) return sw(0x6a86);
        if (data.equals(PPSE_NAME)) {
          selected = null;
          return spec.ppse ? ok(ppseAnswer) : sw(0x6a82);
        }
        const app = data.length >= 5 ? apps.find((a) => a.aid.subarray(0, data.length).equals(data)) : undefined;
        if (!app) return sw(0x6a82);
        selected = app;
        return ok(fciOf(app));
      }
      if (cla === 0x80 && ins === 0xa8) {
        if (p1 !== 0 || p2 !== 0) return sw(0x6a86);
        if (!selected) return sw(0x6985);
        if (data.length < 2 || data[0] !== 0x83 || data[1] !== pdolLength || data.length !== 2 + pdolLength) return sw(0x6700);
        return ok(gpoAnswer);
      }
      if (cla === 0x00 && ins === 0xb2) {
        if (!selected) return sw(0x6985);
        if ((p2 & 7) !== 4) return sw(0x6a86);
        const rec = records.get(`${p2 >> 3}/${p1}`);
        return rec ? ok(rec) : sw(0x6a83);
      }
      if (cla !== 0x00 && cla !== 0x80) return sw(0x6e00);
      return sw(0x6d00);
    },
  };
}
