import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readMirCard } from '../../device/emv/read.js';
import { InProcessChannel } from '../../device/vcard/inprocess.js';
import { createVirtualCard, type VCardSpec } from '../../device/vcard/spec.js';
import type { VirtualCard } from '../../device/vcard/types.js';
import { RcError } from '../../protocol/errors.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { MIR_PAN } from '../support/pans.js';

/**
 * A card that answers garbage, too little, too much or goes away: the read
 * ends with a coded error (or a valid read), never a crash, never more APDUs
 * than the bound, never the PAN in an error.
 */
const PAN = MIR_PAN;
const SPECS: VCardSpec[] = [
  { kind: 'emv', pan: PAN, expiry: '2028-12', psn: '01', gpoFormat: 1 },
  { kind: 'emv', pan: PAN, expiry: '2028-12', gpoFormat: 2, panLocation: 'track2-only' },
];

type Mutation =
  { kind: 'flip'; at: number; byte: number } | { kind: 'cut'; keep: number } | { kind: 'extend'; extra: Uint8Array } | { kind: 'replace'; bytes: Uint8Array };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), keep: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  fc.record({ kind: fc.constant('replace' as const), bytes: fc.uint8Array({ maxLength: 60 }) }),
);

function mutate(data: Uint8Array, m: Mutation): Uint8Array {
  const b = Buffer.from(data);
  switch (m.kind) {
    case 'flip':
      if (b.length > 0) b[m.at % b.length] = m.byte;
      return b;
    case 'cut':
      return b.subarray(0, m.keep % (b.length + 1));
    case 'extend':
      return Buffer.concat([b.subarray(0, Math.max(0, b.length - 2)), m.extra, b.subarray(Math.max(0, b.length - 2))]);
    case 'replace':
      return Buffer.from(m.bytes);
  }
}

function mutated(spec: VCardSpec, plan: Map<number, Mutation>): VirtualCard {
  const card = createVirtualCard(spec);
  let n = 0;
  return {
    atr: () => card.atr(),
    powerOn: () => {
      n = 0;
      card.powerOn();
    },
    transmit(apdu) {
      n++;
      const a = card.transmit(apdu);
      const m = plan.get(n);
      return a.kind === 'response' && m ? { kind: 'response', data: mutate(a.data, m) } : a;
    },
  };
}

describe('readMirCard on hostile cards', () => {
  it('mutated answers end in a coded error or a valid read, within the APDU bound, without the PAN in errors', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: SPECS.length - 1 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 7 }), mutationArb), { minLength: 1, maxLength: 3 }),
        async (which, muts) => {
          const ch = new InProcessChannel(mutated(SPECS[which]!, new Map(muts)));
          try {
            const r = await readMirCard(ch, { now: new Date('2026-11-24T00:00:00Z'), tokenKey: DEV_TOKEN_KEY, maxApdus: 12 });
            expect(r.maskedPan).toMatch(/^\d{6}\*+\d{4}$/);
            expect(r.apdus).toBeLessThanOrEqual(12);
            expect(r.token).toMatch(/^[0-9a-f]{32}$/);
          } catch (e) {
            expect(e).toBeInstanceOf(RcError);
            expect((e as RcError).code).toMatch(/^card\./);
            const text = JSON.stringify(e) + (e as Error).message;
            expect(text).not.toContain(PAN);
            expect(text).not.toContain('345678');
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('random bytes as every answer end in a coded error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 20 }), async (answers) => {
        let i = 0;
        const card: VirtualCard = {
          atr: () => Buffer.from('3B80800101', 'hex'),
          powerOn() {},
          transmit: () => ({ kind: 'response', data: answers[i++ % answers.length]! }),
        };
        try {
          await readMirCard(new InProcessChannel(card), { now: new Date(), tokenKey: DEV_TOKEN_KEY });
        } catch (e) {
          expect(e).toBeInstanceOf(RcError);
          expect((e as RcError).code).toMatch(/^card\./);
          return;
        }
        // a random answer set that reads as a Mir card is possible only in theory
      }),
      { numRuns: 1500 },
    );
  });
});
