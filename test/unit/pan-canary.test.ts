import { describe, expect, it } from 'vitest';
import { readMirCard } from '../../device/emv/read.js';
import type { VCardSpec } from '../../device/vcard/spec.js';
import { logSink } from '../support/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { inProcessRig } from '../suites/inprocess-rig.js';
import { CANARY_PAN, CANARY_PAN_19 } from '../support/pans.js';

/**
 * A canary card number goes through the in-process rig with debug logging on;
 * afterwards the captured log, every thrown error (JSON, message and stack)
 * and every result are scanned: the PAN, its hidden middle digits and its
 * BCD form appear nowhere.
 */
const CANARY = CANARY_PAN;
const CANARY_19 = CANARY_PAN_19;

function forms(pan: string): string[] {
  const middle = pan.slice(6, pan.length - 4);
  return [pan, middle, Buffer.from(pan, 'ascii').toString('hex'), Buffer.from(pan, 'ascii').toString('base64').slice(0, 16)];
}

describe('the PAN leaves no trace', () => {
  it('a canary PAN read (and refused) with debug logging appears in no log, error or result', async () => {
    const sink = logSink({ level: 'trace' });
    const log = sink.log.child({ component: 'emv' });
    const rig = inProcessRig();
    const outputs: string[] = [];
    const base = { kind: 'emv', expiry: '2031-07', psn: '01' } as const;
    const specs: VCardSpec[] = [
      { ...base, pan: CANARY, gpoFormat: 1 },
      { ...base, pan: CANARY, gpoFormat: 2, panLocation: 'track2-only' },
      { ...base, pan: CANARY_19, par: 'PARCANARY' },
      { ...base, pan: CANARY, faults: { needGetResponse: true } },
      // refusals after the card sent its PAN: malformed record, truncated record, pulled card, wrong Luhn, bound hit
      { ...base, pan: CANARY, gpoFormat: 1, faults: { garbleTlvAt: 5 } },
      { ...base, pan: CANARY, faults: { truncateAt: 4 } },
      { ...base, pan: CANARY, faults: { removeAfterApdus: 4 } },
      { ...base, pan: `${CANARY.slice(0, 15)}5` },
      { ...base, pan: CANARY, scheme: 'visa' },
    ];
    let reads = 0;
    let refusals = 0;
    for (const [i, spec] of specs.entries()) {
      const ch = await rig.present(spec);
      try {
        const r = await readMirCard(ch, { now: new Date(), tokenKey: DEV_TOKEN_KEY, log, maxApdus: i === 3 ? 9 : 16 });
        outputs.push(JSON.stringify(r));
        log.info({ card: r }, 'card read');
        reads++;
      } catch (e) {
        outputs.push(JSON.stringify(e), String(e), (e as Error).stack ?? '', JSON.stringify((e as { cause?: unknown }).cause ?? null));
        log.warn({ err: e }, 'card refused');
        refusals++;
      }
      await rig.remove();
    }
    await new Promise((r) => setImmediate(r));
    expect(reads).toBe(3);
    expect(refusals).toBe(6);
    const logText = sink.text();
    expect(logText).toContain('"msg":"apdu"'); // debug logging really ran
    expect(logText).toContain('220073******0574');
    const haystack = logText + outputs.join('\n');
    for (const pan of [CANARY, CANARY_19, `${CANARY.slice(0, 15)}5`]) {
      for (const f of forms(pan)) expect(haystack).not.toContain(f);
    }
  });
});
