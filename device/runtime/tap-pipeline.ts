import { performance } from 'node:perf_hooks';
import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import type { TokenDeriver } from '../../protocol/token-hsm.js';
import type { TokenKey } from '../../protocol/token.js';
import type { Config } from '../config/schema.js';
import { readMirCard } from '../emv/read.js';
import type { DisplayMessage, PassOutcome } from '../io/types.js';
import type { CardChannel, CardRead } from '../reader/types.js';
import { decideUnreadable } from '../../protocol/rules/messages.js';
import type { Decision, Direction, Tap } from '../../protocol/rules/types.js';
import type { JournalEntry, Store } from '../store/index.js';
import type { Clock } from './clock.js';
import type { OutcomeReport } from './events.js';
import type { PeripheralRouter } from './peripherals.js';
import { processTap } from './process-tap.js';
import type { ReaderSlot } from './readers.js';
import type { TapReport } from './status.js';

/**
 * One tap: read the Mir card → token (one per key version held, newest first;
 * the first one a list holds decides) → store view → decide → durable journal
 * commit → ONLY THEN the peripherals (display text, light and beep; gate open
 * by reader direction) → the gate's outcome ('passed' / 'not-passed') journaled
 * as a follow-up event.
 *
 * A card that cannot be read becomes a journaled deny whose reason is its
 * error code (the rules' decideUnreadable); a journal that cannot be written
 * refuses the tap with a device-fault message.
 */

/** The journal's token for a tap whose card gave no token (unreadable, or not Mir). */
export const NO_TOKEN = '0'.repeat(32);

const DEVICE_FAULT = { ru: 'Ошибка устройства. Обратитесь к персоналу', en: 'Device error. Ask the staff' };

export interface TapPipelineOptions {
  store: Store;
  router: PeripheralRouter;
  tokenKey: TokenKey | TokenDeriver;
  log: Logger;
  clock: Clock;
  readTimeoutMs: number;
  /** The rules now (they may be replaced while running). */
  config(): Config;
  /** Tell the sync client there is something to upload. */
  notify(): void;
  /** Keep a gate-outcome follow-up until it is journaled (stop() waits for it). */
  track(p: Promise<void>): void;
  outcome(r: OutcomeReport): void;
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

export class TapPipeline {
  constructor(private readonly o: TapPipelineOptions) {}

  /** One tap, start to end; t0 is when the card was presented (performance.now()). Never throws; null when refused. */
  async run(slot: ReaderSlot, channel: CardChannel, t0: number): Promise<TapReport | null> {
    slot.state = 'reading';
    try {
      return await this.tap(slot, channel, t0);
    } catch (e) {
      // last resort: the loop goes on whatever happened
      this.o.log.error({ reader: slot.name, code: ErrorCode.RuntimeTapFailed, err: e instanceof Error ? e.message : String(e) }, 'tap failed');
      return null;
    } finally {
      if (slot.state === 'reading') slot.state = 'idle';
    }
  }

  private async read(channel: CardChannel, wall: number): Promise<{ read: CardRead; error: null } | { read: null; error: RcError }> {
    try {
      return { read: await readMirCard(channel, { now: new Date(wall), tokenKey: this.o.tokenKey, timeoutMs: this.o.readTimeoutMs }), error: null };
    } catch (e) {
      const context = { err: e instanceof Error ? e.name : 'unknown' };
      const error = isRcError(e) ? e : new RcError(ErrorCode.CardBadResponse, 'card read failed unexpectedly', context);
      return { read: null, error };
    }
  }

  private async tap(slot: ReaderSlot, channel: CardChannel, t0: number): Promise<TapReport | null> {
    const { store, log, clock } = this.o;
    const cfg = this.o.config();
    const wall = clock.wallMs();
    const mono = clock.monoMs();
    const { read, error } = await this.read(channel, wall);
    const readMs = performance.now() - t0;
    const tap: Tap = {
      wallTime: wall,
      monotonicMs: mono,
      bootId: clock.bootId,
      direction: slot.direction,
      reader: slot.name,
      card: { token: read ? read.token : NO_TOKEN, expiry: read ? read.expiry : null },
    };
    const scheme = read ? read.scheme : typeof error?.context?.scheme === 'string' ? error.context.scheme : null;
    let decision: Decision;
    let entry: JournalEntry;
    try {
      if (read) {
        ({ decision, entry } = processTap(store, tap, cfg, read.tokens ?? [{ token: read.token, keyVersion: read.keyVersion }]));
      } else {
        decision = decideUnreadable(cfg.device.kind, error.code, wall);
        entry = store.commitTap(tap, decision, { listVersions: store.listVersions() });
        slot.lastError = { code: error.code, at: new Date(wall).toISOString() };
        log.info({ reader: slot.name, code: error.code, scheme: scheme ?? undefined, seq: entry.seq }, 'card not accepted; deny journaled');
      }
    } catch (e) {
      // the journal could not be written: the passenger must not pass on an unrecorded decision
      const code = isRcError(e) ? e.code : ErrorCode.RuntimeJournalFailed;
      slot.lastError = { code: ErrorCode.RuntimeJournalFailed, at: new Date().toISOString() };
      const err = e instanceof Error ? e.message : String(e);
      log.error({ reader: slot.name, code: ErrorCode.RuntimeJournalFailed, cause: code, err }, 'journal commit failed: tap refused');
      await this.o.router.show(slot.name, { text: `${DEVICE_FAULT.ru}\n${DEVICE_FAULT.en}`, light: 'red', beep: 'error' });
      return null;
    }
    const commitMs = performance.now() - t0;
    try {
      this.o.notify();
    } catch {
      // the sync client uploads on its own timer too
    }

    // ---- only now: the passenger's signal ------------------------------------
    const gate = await this.signal(slot, decision, entry);
    const signalMs = performance.now() - t0;
    const report: TapReport = {
      reader: slot.name,
      direction: slot.direction,
      seq: entry.seq,
      time: entry.time,
      tokenPrefix: read ? entry.token.slice(0, 8) : null, // the token that decided (an older key's while the lists migrate)
      maskedPan: read ? read.maskedPan : null,
      scheme,
      result: decision.result,
      reason: decision.reason,
      fareKopecks: decision.fareKopecks,
      benefit: decision.benefit,
      display: decision.display,
      error: error ? error.code : null,
      readMs: round3(readMs),
      commitMs: round3(commitMs),
      signalMs: round3(signalMs),
      gate,
    };
    slot.taps++;
    if (read) {
      const { result, reason, fareKopecks, benefit } = decision;
      const fields = {
        reader: slot.name,
        seq: entry.seq,
        maskedPan: read.maskedPan,
        token: report.tokenPrefix,
        keyVersion: entry.keyVersion,
        result,
        reason,
        fareKopecks,
        benefit,
      };
      log.info({ ...fields, ms: report.signalMs }, 'tap decided');
    }
    return report;
  }

  /** Display, light and beep; on an allowed turnstile tap, open the gate (its outcome is journaled when it comes). */
  private async signal(slot: ReaderSlot, decision: Decision, entry: JournalEntry): Promise<TapReport['gate']> {
    const cfg = this.o.config();
    const allow = decision.result === 'allow';
    const msg: DisplayMessage = {
      text: `${decision.display.ru}\n${decision.display.en}`,
      light: allow ? 'green' : 'red',
      beep: allow ? 'short' : 'error',
    };
    let gate: TapReport['gate'] = null;
    const freePassage = cfg.device.kind === 'turnstile' && cfg.school?.freePassage === true;
    if (allow && cfg.device.kind === 'turnstile' && !freePassage) {
      const direction: Direction = decision.direction ?? slot.direction ?? 'entry';
      gate = direction === 'exit' ? 'open-exit' : 'open-entry';
      for (const t of this.o.router.turnstiles(slot.name)) {
        if (t.state === 'free-passage') continue;
        const opened = direction === 'exit' ? t.openForExit() : t.openForEntry();
        const follow = opened.catch((): PassOutcome => 'not-passed').then((outcome) => this.journalOutcome(slot, entry, direction, outcome));
        this.o.track(follow);
      }
    }
    await this.o.router.show(slot.name, msg);
    return gate;
  }

  private journalOutcome(slot: ReaderSlot, entry: JournalEntry, direction: Direction, outcome: PassOutcome): void {
    const { store, log, clock } = this.o;
    try {
      const flags = [`tap:${entry.seq}`];
      const ev = store.appendEvent({ wallTime: clock.wallMs(), token: entry.token, kind: entry.kind, reason: outcome, direction, reader: slot.name, flags });
      log.info({ reader: slot.name, tapSeq: entry.seq, seq: ev.seq, outcome }, outcome === 'passed' ? 'person passed' : 'gate opened, nobody passed');
      this.o.outcome({ reader: slot.name, seq: ev.seq, tapSeq: entry.seq, outcome, direction });
      this.o.notify();
    } catch (e) {
      log.warn({ reader: slot.name, tapSeq: entry.seq, outcome, err: e instanceof Error ? e.message : String(e) }, 'gate outcome not journaled');
    }
  }
}
