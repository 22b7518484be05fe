import { ErrorCode } from '../errors.js';
import type { DeviceKind, Direction } from '../ids.js';
import type { SchoolEntry, StopEntry, TransitEntry } from '../lists.js';
import type { CanteenRules, PartnerRules, SchoolRules, Tariff } from '../rules-schema.js';

/**
 * The decision core's inputs and output. Plain data: `decide` has no clock, no
 * database and no logger (see protocol/rules/index.ts).
 */

export type { DeviceKind, Direction };

/** What the rules read about the device that decides; a device config (device/config) is one as it is. */
interface DeviceFacts {
  /** Device id: a bus without a vehicle id counts repeat taps per device. */
  id: string;
  /** IANA time zone of the calendar rules (months, days, schedules). */
  timeZone: string;
}

/** A bus validator: its route (and vehicle) and the tariff. */
export interface BusContext {
  device: DeviceFacts & { kind: 'bus'; route: string; vehicle?: string | undefined };
  tariff: Tariff;
}

/** A school turnstile: its school and the school's rules. */
export interface TurnstileContext {
  device: DeviceFacts & { kind: 'turnstile'; schoolId: string };
  school: SchoolRules;
}

/** A canteen terminal: its school and the canteen rules. */
export interface CanteenContext {
  device: DeviceFacts & { kind: 'canteen'; schoolId: string };
  canteen: CanteenRules;
}

/** A partner's resident check: the partner, its category and the partners' discount rules. */
export interface PartnerContext {
  device: DeviceFacts & { kind: 'partner'; partnerId: string; partnerCategory: string };
  partners: PartnerRules;
}

/** The input of `decide` besides the tap and the view, by device kind. */
export type RulesContext = BusContext | TurnstileContext | CanteenContext | PartnerContext;

/** One tap, as the runtime (or replay) saw it. */
export interface Tap {
  /** Wall-clock time of the tap, epoch ms (may be wrong: set back or forward). */
  wallTime: number;
  /** Monotonic clock, ms; comparable only between taps with the same bootId. */
  monotonicMs: number;
  /** Identifies one run of the monotonic clock (the kernel boot id; "replay" in replays). */
  bootId: string;
  /** Reader direction (turnstiles); null when the reader has none. */
  direction: Direction | null;
  /** Reader name, for the journal. */
  reader?: string;
  card: {
    token: string; // 32 hex digits
    /** Expiry read from the card (YYYY-MM); null when unknown (then the list's is used). */
    expiry: string | null;
  };
  /** bus: override the configured route / vehicle (replay of a fleet's taps). */
  route?: string;
  vehicle?: string;
}

/** Where and when an event happened, for window and clock-guard arithmetic. */
export interface ClockMark {
  effMs: number; // guarded wall time (never goes backwards for a token)
  monoMs: number;
  bootId: string;
}

/**
 * Per-token state that is not a simple counter: the clock anchor and the last
 * events the windows and anti-passback need. Stored as one JSON row per token.
 */
export interface TokenMarks {
  /** Last tap of this token on this device (any result): the clock-guard anchor. */
  anchor?: ClockMark;
  /** bus: last tap that started a repeat window (allowed, not itself a repeat). */
  lastRide?: ClockMark & { route: string; vehicle: string };
  /** bus: last paid tap that opens a transfer window, and transfers used since. */
  lastPaid?: ClockMark & { route: string; transfers: number };
  /** turnstile: last allowed passage. */
  passage?: ClockMark & { direction: Direction; day: string };
}

/** What the store read for this token before deciding. */
export interface View {
  transit: TransitEntry | null;
  stop: StopEntry | null;
  /** Entries of this token per school scope ("school:<id>" → entry). */
  schools: Record<string, SchoolEntry>;
  /** Counter values by `${name}@${period}`, e.g. "quota:pensioner@2026-11", "fare@2026-11-24", "meal:lunch@2026-11-24". */
  counters: Record<string, number>;
  marks: TokenMarks;
  /** The versions of the lists this view was read from. */
  listVersions: Record<string, number>;
}

export interface CounterAdd {
  name: string;
  period: string;
  by: number;
}

/** What the store must write with the journal entry. */
export interface CounterDelta {
  add: CounterAdd[];
  /** The token's marks after this tap (replaces the stored ones). */
  marks: TokenMarks;
}

export const REASONS = [
  'ok', // allowed, nothing special (turnstile pass, full fare not applicable)
  'benefit', // a benefit applied (free / discounted / free meal)
  'full-fare',
  'stop-list',
  'card-expired',
  'quota-exhausted',
  'repeat-tap',
  'transfer',
  'capped',
  'not-enrolled',
  'outside-hours',
  'anti-passback',
  'meal-already-taken',
  'paid-meal',
  'not-entitled',
  'free-passage',
  'unknown-route',
  'resident', // partner: a connected, valid card; the discount is shown
  'not-resident', // partner: the card is not connected
] as const;

/**
 * A card that could not be read (or is not Mir) is denied with its error code
 * as the reason: the journal, the status and the server see `card.not-mir`,
 * `card.removed`, … (the codes of protocol/errors.ts, explained in the README).
 */
export const UNREADABLE_REASONS = [
  ErrorCode.CardNotMir,
  ErrorCode.CardRemoved,
  ErrorCode.CardTimeout,
  ErrorCode.CardStatus,
  ErrorCode.CardNoApplication,
  ErrorCode.CardBadResponse,
  ErrorCode.CardMissingData,
  ErrorCode.CardBadPan,
  ErrorCode.CardBadExpiry,
  ErrorCode.CardTooManyApdus,
  ErrorCode.TlvMalformed,
  ErrorCode.TlvTooDeep,
  // the reader failed during the read (the card channel's transmit)
  ErrorCode.PcscUnavailable,
  ErrorCode.ReaderNotFound,
  ErrorCode.ReaderTimeout,
  ErrorCode.ReaderTransmit,
  ErrorCode.ReaderBindingMissing,
] as const;
export type UnreadableReason = (typeof UNREADABLE_REASONS)[number];

export type Reason = (typeof REASONS)[number] | UnreadableReason;

export function isUnreadableReason(code: string): code is UnreadableReason {
  return (UNREADABLE_REASONS as readonly string[]).includes(code);
}

export interface Decision {
  kind: DeviceKind;
  result: 'allow' | 'deny';
  reason: Reason;
  fareKopecks: number;
  /** The benefit or meal category applied, or null. */
  benefit: string | null;
  display: { ru: string; en: string };
  counterDelta: CounterDelta;
  /** The guarded wall time the calendar rules used (epoch ms). */
  effectiveTime: number;
  /** Extra facts for the journal: 'deferred-charge', 'anti-passback-soft', 'clock-behind', … */
  flags: string[];
  route?: string;
  vehicle?: string;
  direction?: Direction;
  meal?: string;
  /** partner: the discount shown, percent (also in flags as `discount:<n>`). */
  discountPercent?: number;
}

export const counterKey = (name: string, period: string): string => `${name}@${period}`;
