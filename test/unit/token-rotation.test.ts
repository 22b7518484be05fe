import { afterEach, describe, expect, it } from 'vitest';
import { deriverRing, softDeriver, type TokenDeriver } from '../../protocol/token-hsm.js';
import type { CardTokenData, TokenKey } from '../../protocol/token.js';
import { expectRcError } from '../support/errors.js';
import { ROTATION_PAN, pensionerEntry, rotationFixture, rotationToken } from '../support/key-rotation.js';
import { busConfig, makeRig, mirSpec, turnstileConfig, type Rig } from './runtime-helpers.js';

/**
 * Key rotation on a device (docs/token-key.md, Rotation): while the cards are
 * re-imported under v+1, the lists hold v tokens for some cards and v+1 tokens
 * for others. A device holding both keys derives the card's token with each,
 * looks them up newest first, and the first one listed decides; the journal
 * records that token and its version (the newest when none is listed).
 */
// v1 is a key version from before the PAN ‖ expiry migration (PAN ‖ PSN tokens), v2 one made since (PAN ‖ expiry):
// the rotation that carries the migration (docs/token-key.md)
const K1: TokenKey = { version: 1, key: Buffer.from('11'.repeat(32), 'hex'), scheme: 'pan-psn' };
const K2: TokenKey = { version: 2, key: Buffer.from('22'.repeat(32), 'hex') };
const F = rotationFixture(K1, K2);
const tok = rotationToken;
const { old: OLD, new: NEW, none: NONE, stopped: STOPPED } = ROTATION_PAN; // OLD listed under v1, NEW under v2, NONE under neither, STOPPED stop-listed under v1

/** A soft deriver that counts its HMACs. */
function counting(key: TokenKey): TokenDeriver & { calls: number } {
  const d = softDeriver(key);
  const c = {
    version: d.version,
    scheme: d.scheme,
    calls: 0,
    derive: (pan: Uint8Array, card: CardTokenData) => {
      c.calls++;
      return d.derive(pan, card);
    },
    close: () => d.close(),
  };
  return c;
}

let rig: Rig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

describe('a device holding key versions 1 and 2 recognises cards listed under either while the lists migrate', () => {
  it('bus: a card listed under its v1 token and one under its v2 token get their benefit; one listed under neither pays the full fare', async () => {
    const d1 = counting(K1);
    const d2 = counting(K2);
    rig = await makeRig(busConfig(), ['Bus'], { tokenKey: deriverRing([d1, d2]) });
    rig.store.applySnapshot(F.transit);
    rig.store.applySnapshot(F.stoplist);

    const old = await rig.tap('Bus', mirSpec(OLD));
    expect(old).toMatchObject({ result: 'allow', reason: 'benefit', benefit: 'pensioner', tokenPrefix: tok(OLD, K1).slice(0, 8) });
    rig.clock.set('2026-11-24T08:10:00+03:00');
    const nu = await rig.tap('Bus', mirSpec(NEW));
    expect(nu).toMatchObject({ result: 'allow', reason: 'benefit', benefit: 'pensioner', tokenPrefix: tok(NEW, K2).slice(0, 8) });
    rig.clock.set('2026-11-24T08:20:00+03:00');
    const none = await rig.tap('Bus', mirSpec(NONE));
    expect(none).toMatchObject({ result: 'allow', reason: 'full-fare', fareKopecks: 3500 });
    rig.clock.set('2026-11-24T08:30:00+03:00');
    const stopped = await rig.tap('Bus', mirSpec(STOPPED));
    expect(stopped).toMatchObject({ result: 'deny', reason: 'stop-list' });

    // the journal holds the token that decided and its key version; the newest when none is listed
    expect(rig.store.journalRange(1, 10).map((e) => [e.reason, e.token, e.keyVersion])).toEqual([
      ['benefit', tok(OLD, K1), 1],
      ['benefit', tok(NEW, K2), 2],
      ['full-fare', tok(NONE, K2), 2],
      ['stop-list', tok(STOPPED, K1), 1],
    ]);
    // one HMAC per version per tap
    expect([d1.calls, d2.calls]).toEqual([4, 4]);
    // the log names the token prefix and version that decided, never the PAN
    const logged = rig.logs.lines.join('');
    for (const pan of [OLD, NEW, NONE, STOPPED]) expect(logged).not.toContain(pan);
    expect(rig.logs.lines.some((l) => l.includes('"keyVersion":1') && l.includes(tok(OLD, K1).slice(0, 8)))).toBe(true);
  });

  it('turnstile: students listed under v1 and under v2 pass; a card listed under neither is refused as not enrolled', async () => {
    rig = await makeRig(turnstileConfig(), ['Entry', 'Exit'], { tokenKey: deriverRing([softDeriver(K2), softDeriver(K1)]) });
    rig.store.applySnapshot(F.school);

    const old = await rig.tap('Entry', mirSpec(OLD));
    expect(old).toMatchObject({ result: 'allow', gate: 'open-entry' });
    await rig.outcome(old.seq);
    const nu = await rig.tap('Entry', mirSpec(NEW));
    expect(nu).toMatchObject({ result: 'allow', gate: 'open-entry' });
    await rig.outcome(nu.seq);
    const none = await rig.tap('Entry', mirSpec(NONE));
    expect(none).toMatchObject({ result: 'deny', reason: 'not-enrolled', gate: null });

    const taps = rig.store.journalRange(1, 10).filter((e) => e.result !== 'event');
    expect(taps.map((e) => [e.result, e.token, e.keyVersion])).toEqual([
      ['allow', tok(OLD, K1), 1],
      ['allow', tok(NEW, K2), 2],
      ['deny', tok(NONE, K2), 2],
    ]);
    // the anti-passback marks follow the token that decided: the v1 student's exit is judged on its v1 token
    const out = await rig.tap('Exit', mirSpec(OLD));
    expect(out).toMatchObject({ result: 'allow', gate: 'open-exit', tokenPrefix: tok(OLD, K1).slice(0, 8) });
    await rig.outcome(out.seq);
  });

  it('a source holding one version derives one token per tap (no extra HMAC) and journals its version', async () => {
    const d2 = counting(K2);
    rig = await makeRig(busConfig(), ['Bus'], { tokenKey: deriverRing([d2]) });
    rig.store.applySnapshot({ scope: 'transit', version: 2, entries: [pensionerEntry(tok(NEW, K2)), pensionerEntry(tok(OLD, K1))] });
    expect(await rig.tap('Bus', mirSpec(NEW))).toMatchObject({ reason: 'benefit' });
    rig.clock.set('2026-11-24T08:10:00+03:00');
    // listed only under v1, which this device does not hold: unknown to it
    expect(await rig.tap('Bus', mirSpec(OLD))).toMatchObject({ reason: 'full-fare' });
    expect(d2.calls).toBe(2);
    expect(rig.store.journalRange(1, 10).map((e) => e.keyVersion)).toEqual([2, 2]);
  });

  it('a ring refuses two keys of the same version', () => {
    expectRcError(() => deriverRing([softDeriver(K1), softDeriver({ ...K2, version: 1 })]), 'token.key-invalid');
    expectRcError(() => deriverRing([]), 'token.key-invalid');
  });
});
