import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { StatusSchema } from '../../device/runtime/status.js';
import { NO_TOKEN } from '../../device/runtime/tap-pipeline.js';
import { decideUnreadable } from '../../protocol/rules/messages.js';
import { busConfig, makeRig, mirSpec, MockPeripheral, PAN, tokenOf, turnstileConfig, type Rig } from './runtime-helpers.js';

let rig: Rig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

describe('runtime: the tap loop', () => {
  it('journals the decision before the peripheral receives its command (the row exists at the moment of the signal)', async () => {
    rig = await makeRig(busConfig(), ['Bus']);
    const r = rig;
    const seen: { kind: string; journaled: boolean }[] = [];
    r.periph.onCommand = (c) => {
      const last = r.store.journalRange(1, 100).at(-1);
      seen.push({ kind: c.kind, journaled: last !== undefined && last.token === tokenOf(PAN.pensioner) && last.result === 'allow' });
    };
    const t = await r.tap('Bus', mirSpec(PAN.pensioner));
    expect(t).toMatchObject({ result: 'allow', reason: 'benefit', fareKopecks: 0, benefit: 'pensioner', seq: 1, maskedPan: '220070******0017' });
    expect(seen).toEqual([{ kind: 'show', journaled: true }]);
    const show = r.periph.commands[0]!;
    expect(show.msg).toMatchObject({ light: 'green' });
    expect(show.msg!.text).toContain('Льгота');
  });

  it('a bus charges the full fare to an unknown card and refuses a stop-listed one with a red light', async () => {
    rig = await makeRig(busConfig(), ['Bus']);
    const unknown = await rig.tap('Bus', mirSpec(PAN.unknown));
    expect(unknown).toMatchObject({ result: 'allow', reason: 'full-fare', fareKopecks: 3500 });
    rig.clock.set('2026-11-24T08:20:00+03:00');
    const stopped = await rig.tap('Bus', mirSpec(PAN.stopped, '01'));
    expect(stopped).toMatchObject({ result: 'deny', reason: 'stop-list', fareKopecks: 0 });
    expect(rig.periph.commands.map((c) => c.msg?.light)).toEqual(['green', 'red']);
    expect(rig.periph.commands.some((c) => c.kind.startsWith('open'))).toBe(false); // a bus has no gate
  });

  it('the same card again inside the repeat window (by the monotonic clock) is not charged twice', async () => {
    rig = await makeRig(busConfig(), ['Bus']);
    await rig.tap('Bus', mirSpec(PAN.unknown));
    rig.clock.mono += 60_000;
    rig.clock.wall -= 3_600_000; // the wall clock jumped back: the window still holds
    const again = await rig.tap('Bus', mirSpec(PAN.unknown));
    expect(again).toMatchObject({ result: 'allow', reason: 'repeat-tap', fareKopecks: 0 });
  });

  it('a card that is not Mir is a journaled deny whose reason is the error code, with a red light', async () => {
    rig = await makeRig(busConfig(), ['Bus']);
    const t = await rig.tap('Bus', { kind: 'emv', scheme: 'visa', pan: '4111111111111111', expiry: '2029-01', psn: '00' });
    expect(t).toMatchObject({ result: 'deny', reason: ErrorCode.CardNotMir, error: ErrorCode.CardNotMir, scheme: 'visa', maskedPan: null });
    const [row] = rig.store.journalRange(1, 10);
    expect(row).toMatchObject({ seq: 1, result: 'deny', reason: 'card.not-mir', token: NO_TOKEN, fareKopecks: 0 });
    expect(rig.periph.commands[0]!.msg).toMatchObject({ light: 'red' });
    expect(rig.runtime.status().readers[0]!.lastError?.code).toBe('card.not-mir');
  });

  it('a card pulled mid-read is a journaled card.removed deny, and the next card reads normally', async () => {
    rig = await makeRig(busConfig(), ['Bus']);
    const pulled = await rig.tap('Bus', { ...mirSpec(PAN.pensioner), faults: { removeAfterApdus: 2 } });
    expect(pulled).toMatchObject({ result: 'deny', reason: ErrorCode.CardRemoved });
    const next = await rig.tap('Bus', mirSpec(PAN.pensioner));
    expect(next).toMatchObject({ result: 'allow', reason: 'benefit', seq: 2 });
  });

  it('a silent card times out into a journaled card.timeout deny; the loop goes on', async () => {
    rig = await makeRig(busConfig(), ['Bus'], { readTimeoutMs: 30 });
    const t = await rig.tap('Bus', { ...mirSpec(PAN.pensioner), faults: { silentAt: 2 } });
    expect(t).toMatchObject({ result: 'deny', reason: ErrorCode.CardTimeout });
    expect((await rig.tap('Bus', mirSpec(PAN.unknown))).reason).toBe('full-fare');
  });

  it('a peripheral that is down (or throws) does not stop decisions: the tap is still decided and journaled', async () => {
    rig = await makeRig(busConfig(), ['Bus']);
    rig.periph.down = true;
    const a = await rig.tap('Bus', mirSpec(PAN.unknown));
    rig.periph.throwOnShow = true;
    rig.clock.set('2026-11-24T09:00:00+03:00');
    const b = await rig.tap('Bus', mirSpec(PAN.pensioner));
    expect([a.result, b.result]).toEqual(['allow', 'allow']);
    expect(rig.store.journalRange(1, 10).map((e) => e.reason)).toEqual(['full-fare', 'benefit']);
    expect(rig.runtime.status().peripherals[0]!.health.status).toBe('down');
  });

  it('a student on the entry reader opens the gate for entry; the passage is journaled as a follow-up event', async () => {
    rig = await makeRig(turnstileConfig(), ['Entry', 'Exit']);
    const t = await rig.tap('Entry', mirSpec(PAN.student));
    expect(t).toMatchObject({ result: 'allow', gate: 'open-entry', direction: 'entry' });
    const o = await rig.outcome(t.seq);
    expect(o).toMatchObject({ outcome: 'passed', direction: 'entry', seq: t.seq + 1 });
    const rows = rig.store.journalRange(1, 10);
    expect(rows.map((e) => [e.result, e.reason, e.direction])).toEqual([
      ['allow', 'ok', 'entry'],
      ['event', 'passed', 'entry'],
    ]);
    // the gate command came after the journal row, and the open precedes nothing unjournaled
    expect(rig.periph.commands.map((c) => c.kind)).toEqual(['open-entry', 'show']);
  });

  it('the exit reader opens for exit; a gate nobody walks through is journaled not-passed', async () => {
    rig = await makeRig(turnstileConfig(), ['Entry', 'Exit']);
    const inTap = await rig.tap('Entry', mirSpec(PAN.student));
    await rig.outcome(inTap.seq);
    rig.periph.outcome = 'not-passed';
    rig.clock.set('2026-11-24T14:30:00+03:00');
    const out = await rig.tap('Exit', mirSpec(PAN.student));
    expect(out).toMatchObject({ result: 'allow', gate: 'open-exit' });
    expect((await rig.outcome(out.seq)).outcome).toBe('not-passed');
    expect(rig.store.journalRange(out.seq + 1, 1)[0]).toMatchObject({ result: 'event', reason: 'not-passed', direction: 'exit' });
  });

  it('an unknown card and a student after hours do not open the gate', async () => {
    rig = await makeRig(turnstileConfig(), ['Entry', 'Exit']);
    const unknown = await rig.tap('Entry', mirSpec(PAN.unknown));
    expect(unknown).toMatchObject({ result: 'deny', reason: 'not-enrolled', gate: null });
    rig.clock.set('2026-11-24T19:40:00+03:00');
    const late = await rig.tap('Entry', mirSpec(PAN.student));
    expect(late).toMatchObject({ result: 'deny', reason: 'outside-hours', gate: null });
    expect(rig.periph.commands.filter((c) => c.kind.startsWith('open'))).toEqual([]);
  });

  it('free-passage mode: the gate is set open at start, taps are still journaled, no per-tap open', async () => {
    rig = await makeRig(turnstileConfig({}, { freePassage: true }), ['Entry', 'Exit']);
    expect(rig.periph.commands.map((c) => c.kind)).toEqual(['free-passage']);
    const t = await rig.tap('Entry', mirSpec(PAN.unknown));
    expect(t).toMatchObject({ result: 'allow', reason: 'free-passage', gate: null });
    expect(rig.store.lastSeq()).toBe(1);
  });

  it('entry and exit readers on one device are served at the same time, one tap at a time per reader', async () => {
    rig = await makeRig(turnstileConfig(), ['Entry', 'Exit']);
    const [a, b] = await Promise.all([rig.tap('Entry', mirSpec(PAN.student)), rig.tap('Exit', mirSpec(PAN.unknown))]);
    expect(new Set([a.seq, b.seq]).size).toBe(2);
    expect(a.reader).toBe('Entry');
    expect(b).toMatchObject({ reader: 'Exit', result: 'deny' });
    await rig.runtime.idle();
  });

  it('with configured reader names, other readers are ignored; a reader that appears later is used', async () => {
    rig = await makeRig(turnstileConfig(), ['Entry', 'Cashier desk']);
    expect(rig.runtime.status().readers.map((r) => [r.name, r.state])).toEqual([
      ['Entry', 'idle'],
      ['Exit', 'absent'], // named in the config, not connected: the technician sees it
    ]);
    rig.source.addReader('Exit 2');
    expect(rig.runtime.status().readers.map((r) => [r.name, r.direction])).toEqual([
      ['Entry', 'entry'],
      ['Exit 2', 'exit'], // "Exit" is a prefix of "Exit 2"
    ]);
  });

  it('without configured readers, every reader present and those that appear later are used', async () => {
    rig = await makeRig(busConfig(), ['R0']);
    rig.source.addReader('R1');
    expect(rig.runtime.status().readers.map((r) => r.name)).toEqual(['R0', 'R1']);
    const t = await rig.tap('R1', mirSpec(PAN.unknown));
    expect(t.reader).toBe('R1');
  });

  it('stop() mid-tap finishes the tap in progress (journaled and signalled), closes the gate and the store', async () => {
    rig = await makeRig(turnstileConfig(), ['Entry', 'Exit']);
    const r = rig;
    r.periph.showDelayMs = 150;
    const done = r.tap('Entry', mirSpec(PAN.student));
    await vi.waitFor(() => expect(r.periph.commands.map((c) => c.kind)).toContain('show')); // the tap is in its signal now
    const stopping = r.runtime.stop();
    const t = await done;
    await stopping;
    expect(t).toMatchObject({ result: 'allow', seq: 1 });
    expect(r.periph.stopped).toBe(true);
    expect(r.periph.state).toBe('closed');
    expect(() => r.store.journalRange(1, 1)).toThrow(); // closed
  });

  it('status reports readers, peripherals, the last tap (masked PAN, token prefix), lists and the journal backlog', async () => {
    rig = await makeRig(busConfig(), ['Bus']);
    await rig.tap('Bus', mirSpec(PAN.unknown));
    const s = rig.runtime.status();
    expect(s.device).toMatchObject({ id: 'bus-unit', kind: 'bus', route: '7' });
    expect(s.readers).toEqual([{ name: 'Bus', direction: null, state: 'idle', cardPresent: false, taps: 1, lastError: null }]);
    expect(s.peripherals[0]).toMatchObject({ name: 'mock', health: { status: 'ok' } });
    expect(s.lastTap).toMatchObject({ maskedPan: '220070******0025', tokenPrefix: tokenOf(PAN.unknown).slice(0, 8), result: 'allow', reason: 'full-fare' });
    expect(s.lists.map((l) => [l.scope, l.version])).toEqual([
      ['school:7', 1],
      ['stoplist', 1],
      ['transit', 1],
    ]);
    expect(s.journal).toEqual({ lastSeq: 1, ackedSeq: 0, backlog: 1 });
    expect(s.sync.configured).toBe(false);
  });

  it('no PAN in any log line, journal row or file the runtime wrote', async () => {
    rig = await makeRig(busConfig(), ['Bus']);
    const pans = [PAN.pensioner, PAN.unknown, '4111111111111111'];
    await rig.tap('Bus', mirSpec(PAN.pensioner));
    await rig.tap('Bus', { ...mirSpec(PAN.unknown), faults: { removeAfterApdus: 3 } });
    await rig.tap('Bus', { kind: 'emv', scheme: 'visa', pan: '4111111111111111', expiry: '2029-01', psn: '00' });
    const status = JSON.stringify(rig.runtime.status());
    const dir = rig.dir;
    await rig.runtime.stop();
    const files = readdirSync(dir).map((f) => readFileSync(join(dir, f)).toString('latin1'));
    for (const p of pans) {
      for (const l of rig.logs.lines) expect(l).not.toContain(p);
      expect(status).not.toContain(p);
      for (const f of files) expect(f).not.toContain(p);
      expect(rig.periph.commands.map((c) => c.msg?.text ?? '').join()).not.toContain(p);
    }
    expect(rig.logs.lines.some((l) => l.includes('tap decided'))).toBe(true);
  });

  it('housekeeping between taps: WAL checkpoint, acknowledged journal past retention pruned, unacknowledged kept', async () => {
    rig = await makeRig(busConfig(), ['Bus']);
    await rig.tap('Bus', mirSpec(PAN.unknown));
    rig.clock.set('2026-11-24T09:00:00+03:00');
    await rig.tap('Bus', mirSpec(PAN.pensioner));
    rig.store.ackUpTo(1);
    const maint = vi.spyOn(rig.store, 'maintenance');
    rig.runtime.housekeeping(Date.parse('2027-01-01T00:00:00Z'));
    expect(maint).not.toHaveBeenCalled(); // a tap just ended: not now
    rig.clock.mono += 1100; // a quiet second on the runtime's (injected) monotonic clock
    rig.runtime.housekeeping(Date.parse('2027-01-01T00:00:00Z'));
    expect(maint).toHaveBeenCalledTimes(1);
    expect(rig.store.journalRange(1, 10).map((e) => e.seq)).toEqual([2]); // seq 1: acknowledged and 30+ days old
  });

  it("a second peripheral bound to another reader gets only that reader's signals", async () => {
    const a = new MockPeripheral('entry-display');
    const b = new MockPeripheral('exit-display');
    rig = await makeRig(busConfig(), ['R0', 'R1'], {
      peripherals: [
        { peripheral: a, reader: 'R0' },
        { peripheral: b, reader: 'R1' },
      ],
    });
    await rig.tap('R1', mirSpec(PAN.unknown));
    expect(a.commands).toEqual([]);
    expect(b.commands.map((c) => c.kind)).toEqual(['show']);
  });

  it('the status the runtime builds is exactly what `rc-device status` accepts: one schema', async () => {
    rig = await makeRig(turnstileConfig(), ['Entry', 'Exit']);
    const t = await rig.tap('Entry', mirSpec(PAN.student));
    await rig.outcome(t.seq);
    const s = rig.runtime.status();
    expect(StatusSchema.parse(JSON.parse(JSON.stringify(s)))).toEqual(JSON.parse(JSON.stringify(s)));
  });

  it('nextTap() without a reader resolves with the next tap on any reader', async () => {
    rig = await makeRig(busConfig(), ['R0', 'R1']);
    const next = rig.runtime.nextTap();
    const t = await rig.tap('R1', mirSpec(PAN.unknown));
    expect(await next).toBe(t);
  });

  it('an unreadable card is denied by the rules with its error code as the reason; an unexpected code counts as card.bad-response', () => {
    expect(decideUnreadable('bus', ErrorCode.CardRemoved, 0)).toMatchObject({ result: 'deny', reason: 'card.removed', display: { en: 'Tap the card again' } });
    expect(decideUnreadable('canteen', ErrorCode.ReaderTransmit, 0)).toMatchObject({
      reason: 'reader.transmit-failed',
      display: { en: 'Card cannot be read' },
    });
    expect(decideUnreadable('turnstile', ErrorCode.ConfigInvalid, 0)).toMatchObject({ reason: ErrorCode.CardBadResponse, flags: ['card-unreadable'] });
  });
});
