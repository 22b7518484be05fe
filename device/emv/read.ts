import { performance } from 'node:perf_hooks';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { deriveAllVersions, type TokenDeriver } from '../../protocol/token-hsm.js';
import { deriveToken, maskPan, type TokenKey } from '../../protocol/token.js';
import type { Logger } from '../../protocol/log.js';
import type { CardChannel, CardRead, CardScheme } from '../reader/types.js';
import { ApduSession, getProcessingOptions, readRecord, selectByName, swHex, type Response } from './apdu.js';
import { checkPan, expiryFrom5F24, panFrom5A, parFrom9F24, parseTrack2, psnFrom5F34 } from './card-data.js';
import { fillPdol } from './pdol.js';
import { KNOWN_MIR_AIDS, MIR_RID, schemeOfAid } from './schemes.js';
import { findAllTlv, findTlv, parseDol, parseTlv, type Tlv } from './tlv.js';

/**
 * Read a Mir contactless card far enough to tokenise it:
 *   SELECT PPSE → pick the Mir application (whatever its priority) → SELECT AID →
 *   GET PROCESSING OPTIONS (PDOL filled) → READ RECORD along the AFL, stopping as
 *   soon as PAN, expiry and PSN are known.
 * A card without a Mir application is refused with card.not-mir {scheme, aid}
 * after the PPSE alone. The PAN exists only in a Buffer of ASCII digits that is
 * wiped (with every response buffer) before this function returns or throws.
 */
export interface ReadOptions {
  now: Date;
  /** The key in memory (demo, tests) or a deriver (the key in a PKCS#11 token; with `older` versions, the read carries every version's token). */
  tokenKey: TokenKey | TokenDeriver;
  /** Per-APDU timeout handed to the channel (default 1000 ms). */
  timeoutMs?: number;
  /** Bound on APDUs, GET RESPONSE and repeats included (default 16). */
  maxApdus?: number;
  /** Debug log of the conversation: instruction, status word, length only. */
  log?: Logger;
}

export const DEFAULT_READ_TIMEOUT_MS = 1000;
export const DEFAULT_MAX_APDUS = 16;

const PPSE_NAME = Buffer.from('2PAY.SYS.DDF01', 'ascii');
const SW_OK = 0x9000;

interface Candidate {
  aid: string;
  priority: number; // 1 = highest; 16 when absent
  order: number;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex').toUpperCase();
}

function statusError(command: string, sw: number, extra: Record<string, unknown> = {}): RcError {
  return new RcError(ErrorCode.CardStatus, `card answered ${swHex(sw)} to ${command}`, { command, sw: swHex(sw), ...extra });
}

function notMir(scheme: CardScheme, aid: string | null): RcError {
  return new RcError(ErrorCode.CardNotMir, `card is not a Mir card (${scheme})`, { scheme, aid });
}

/** Applications listed in a PPSE answer, in card order. */
export function ppseApplications(fci: readonly Tlv[]): Candidate[] {
  const out: Candidate[] = [];
  const fciProp = findTlv(fci, 'BF0C');
  const entries = fciProp ? findAllTlv(fciProp.children, '61') : [];
  entries.forEach((e, order) => {
    const aid = findTlv(e.children, '4F');
    if (!aid || aid.value.length < 5 || aid.value.length > 16) return;
    const prio = findTlv(e.children, '87');
    const p = prio && prio.value.length === 1 ? prio.value[0]! & 0x0f : 0;
    out.push({ aid: hex(aid.value), priority: p === 0 ? 16 : p, order });
  });
  return out;
}

function byPriority(a: Candidate, b: Candidate): number {
  return a.priority - b.priority || a.order - b.order;
}

/** AFL entries (SFI, first, last record), validated. */
function parseAfl(afl: Uint8Array): { sfi: number; first: number; last: number }[] {
  if (afl.length === 0 || afl.length % 4 !== 0 || afl.length > 64) {
    throw new RcError(ErrorCode.CardBadResponse, 'application file locator has a bad length', { tag: '94', bytes: afl.length });
  }
  const out: { sfi: number; first: number; last: number }[] = [];
  for (let i = 0; i < afl.length; i += 4) {
    const sfi = afl[i]! >> 3;
    const first = afl[i + 1]!;
    const last = afl[i + 2]!;
    if ((afl[i]! & 7) !== 0 || sfi < 1 || sfi > 30 || first < 1 || last < first) {
      throw new RcError(ErrorCode.CardBadResponse, 'application file locator entry is invalid', { tag: '94', entry: i / 4 });
    }
    out.push({ sfi, first, last });
  }
  return out;
}

class Found {
  pan: Buffer | null = null;
  panSource = '';
  expiry: string | null = null;
  psn: string | null = null;
  psnSeen = false;
  par: string | null = null;

  /** Take what a template holds. 5A wins over the PAN of 57. */
  absorb(tlvs: readonly Tlv[]): void {
    const t5a = findTlv(tlvs, '5A');
    const t57 = findTlv(tlvs, '57');
    if (t5a && this.panSource !== '5A') {
      const pan = panFrom5A(t5a.value);
      this.setPan(pan, '5A');
    }
    if (t57) {
      const t2 = parseTrack2(t57.value);
      if (!this.pan) this.setPan(t2.pan, '57');
      else t2.pan.fill(0);
      this.expiry ??= t2.expiry;
    }
    const t5f24 = findTlv(tlvs, '5F24');
    if (t5f24) this.expiry = expiryFrom5F24(t5f24.value);
    const t5f34 = findTlv(tlvs, '5F34');
    if (t5f34) {
      this.psn = psnFrom5F34(t5f34.value);
      this.psnSeen = true;
    }
    const t9f24 = findTlv(tlvs, '9F24');
    if (t9f24) this.par = parFrom9F24(t9f24.value);
  }

  private setPan(pan: Buffer, source: string): void {
    this.pan?.fill(0);
    this.pan = pan;
    this.panSource = source;
  }

  complete(): boolean {
    return this.pan !== null && this.expiry !== null && this.psnSeen;
  }

  wipe(): void {
    this.pan?.fill(0);
    this.pan = null;
  }
}

export async function readMirCard(ch: CardChannel, opts: ReadOptions): Promise<CardRead> {
  const t0 = performance.now();
  const log = opts.log;
  const session = new ApduSession(
    ch,
    opts.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS,
    opts.maxApdus ?? DEFAULT_MAX_APDUS,
    log && log.isLevelEnabled('debug') ? (ins, sw, bytes) => log.debug({ ins: ins.toString(16).padStart(2, '0'), sw: swHex(sw), bytes }, 'apdu') : undefined,
  );
  const found = new Found();
  try {
    // 1. PPSE
    const ppse = await session.send(selectByName(PPSE_NAME));
    let candidates: Candidate[] = [];
    if (ppse.sw === SW_OK) {
      const listed = ppseApplications(parseTlv(ppse.data));
      const mir = listed.filter((c) => c.aid.startsWith(MIR_RID)).sort(byPriority);
      if (listed.length > 0 && mir.length === 0) {
        const first = [...listed].sort(byPriority)[0]!;
        throw notMir(schemeOfAid(first.aid), first.aid);
      }
      candidates = mir;
    }
    const direct = candidates.length === 0;
    if (direct) candidates = KNOWN_MIR_AIDS.map((aid, order) => ({ aid, priority: 16, order }));

    // 2. SELECT the Mir application (the next candidate if one is refused)
    let selected: { aid: string; fci: Tlv[] } | null = null;
    let lastSw = 0;
    for (const c of candidates) {
      const r = await session.send(selectByName(Buffer.from(c.aid, 'hex')));
      if (r.sw === SW_OK) {
        const fci = parseTlv(r.data);
        const df = findTlv(fci, '84');
        const aid = df && df.value.length >= 5 ? hex(df.value) : c.aid;
        if (!aid.startsWith(MIR_RID)) throw notMir(schemeOfAid(aid), aid);
        selected = { aid, fci };
        break;
      }
      lastSw = r.sw;
    }
    if (!selected) {
      if (direct) {
        throw new RcError(ErrorCode.CardNoApplication, 'card has no PPSE and no known Mir application', {
          ppseSw: swHex(ppse.sw),
          lastSw: swHex(lastSw),
          tried: candidates.length,
        });
      }
      throw statusError('SELECT', lastSw, { aid: candidates[candidates.length - 1]!.aid });
    }

    // 3. GET PROCESSING OPTIONS
    const pdolTlv = findTlv(selected.fci, '9F38');
    const pdol = pdolTlv ? parseDol(pdolTlv.value) : [];
    const pdolData = fillPdol(pdol, opts.now);
    if (pdolData.length > 250) throw new RcError(ErrorCode.CardBadResponse, 'card asks for too much PDOL data', { bytes: pdolData.length });
    const gpo = await session.send(getProcessingOptions(pdolData));
    if (gpo.sw !== SW_OK) throw statusError('GET PROCESSING OPTIONS', gpo.sw, { aid: selected.aid });
    const gpoTlv = parseTlv(gpo.data);
    const top = gpoTlv[0];
    let afl: Uint8Array;
    if (top?.tag === '80') {
      if (top.value.length < 2) throw new RcError(ErrorCode.CardBadResponse, 'GPO format 1 answer too short', { bytes: top.value.length });
      afl = top.value.subarray(2);
    } else if (top?.tag === '77') {
      const t94 = findTlv(top.children, '94');
      afl = t94 ? t94.value : new Uint8Array(0);
      found.absorb(top.children);
    } else {
      throw new RcError(ErrorCode.CardBadResponse, 'GPO answer is neither format 1 (80) nor format 2 (77)', { tag: top?.tag ?? null });
    }

    // 4. READ RECORD along the AFL until PAN, expiry and PSN are known
    if (!found.complete() && afl.length > 0) {
      outer: for (const { sfi, first, last } of parseAfl(afl)) {
        for (let rec = first; rec <= last; rec++) {
          const r: Response = await session.send(readRecord(sfi, rec));
          if (r.sw !== SW_OK) throw statusError('READ RECORD', r.sw, { sfi, record: rec });
          const tlvs = parseTlv(r.data);
          const tpl = tlvs[0];
          if (!tpl || tpl.tag !== '70' || tlvs.length !== 1) {
            throw new RcError(ErrorCode.CardBadResponse, 'record is not a 70 template', { sfi, record: rec, tag: tpl?.tag ?? null });
          }
          found.absorb(tpl.children);
          if (found.complete()) break outer;
        }
      }
    }
    if (!found.pan) throw new RcError(ErrorCode.CardMissingData, 'card gave no card number', { missing: 'pan', aid: selected.aid });
    if (!found.expiry) throw new RcError(ErrorCode.CardMissingData, 'card gave no expiry date', { missing: 'expiry', aid: selected.aid });
    checkPan(found.pan, found.panSource);

    const k = opts.tokenKey;
    // a source holding older key versions too (a rotation under way): one token per version, newest first
    // what follows the PAN in the token: the expiry (pan-expiry versions) or the PSN (pan-psn versions, before the migration)
    const card = { expiry: found.expiry, psn: found.psn };
    const tokens = 'derive' in k && k.older?.length ? deriveAllVersions(k, found.pan, card) : null;
    const token = tokens ? tokens[0]!.token : 'derive' in k ? k.derive(found.pan, card) : deriveToken(found.pan, card, k);
    const maskedPan = maskPan(found.pan);
    found.wipe();
    const result: CardRead = {
      scheme: 'mir',
      aid: selected.aid,
      maskedPan,
      expiry: found.expiry,
      psn: found.psn,
      par: found.par,
      token,
      keyVersion: k.version,
      ...(tokens ? { tokens } : {}),
      apdus: session.count,
      ms: Math.round((performance.now() - t0) * 1000) / 1000,
    };
    log?.debug({ maskedPan, aid: result.aid, apdus: result.apdus, ms: result.ms }, 'card read');
    return result;
  } catch (e) {
    if (e instanceof RcError) {
      log?.debug({ code: e.code, apdus: session.count }, 'card read failed');
      throw e;
    }
    // a bug of ours, not the card's: never let the message carry card bytes
    throw new RcError(ErrorCode.CardBadResponse, 'card answer could not be processed', {
      apdus: session.count,
      reason: e instanceof Error ? e.name : 'unknown',
    });
  } finally {
    found.wipe();
    session.wipe();
  }
}
