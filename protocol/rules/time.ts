import type { ClockMark, Tap, TokenMarks } from './types.js';

/** Calendar facts of an instant in a time zone. */
export interface LocalTime {
  date: string; // YYYY-MM-DD
  month: string; // YYYY-MM
  hm: string; // HH:MM (00:00..23:59)
  weekday: 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';
}

const fmtCache = new Map<string, Intl.DateTimeFormat>();
const WD: Record<string, LocalTime['weekday']> = { Mon: 'mon', Tue: 'tue', Wed: 'wed', Thu: 'thu', Fri: 'fri', Sat: 'sat', Sun: 'sun' };

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = fmtCache.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'short',
    });
    fmtCache.set(timeZone, f);
  }
  return f;
}

/** The uncached conversion through Intl (the reference `localTime` must agree with). */
export function localTimeUncached(ms: number, timeZone: string): LocalTime {
  const p: Record<string, string> = {};
  for (const part of formatter(timeZone).formatToParts(ms)) p[part.type] = part.value;
  const month = `${p.year}-${p.month}`;
  return { date: `${month}-${p.day}`, month, hm: `${p.hour}:${p.minute}`, weekday: WD[p.weekday ?? ''] ?? 'mon' };
}

const MINUTE = 60_000;
const MAX_CACHED_MINUTES = 20_000; // per zone; about two weeks of distinct minutes
const minuteCache = new Map<string, Map<number, LocalTime>>();

const sameLocal = (a: LocalTime, b: LocalTime): boolean => a.date === b.date && a.hm === b.hm && a.weekday === b.weekday;

/**
 * Local date, month, time of day and weekday of `ms` in `timeZone` (pure: tz data only).
 * Intl is a third of a decision's cost, so the answer is kept per zone and UTC minute.
 * A minute is cached only when its first and last millisecond give the same local
 * minute, so a zone whose offset is not whole minutes (or changes inside one) is
 * still converted exactly, through Intl every time.
 */
export function localTime(ms: number, timeZone: string): LocalTime {
  let zone = minuteCache.get(timeZone);
  if (!zone) {
    zone = new Map();
    minuteCache.set(timeZone, zone);
  }
  const m = Math.floor(ms / MINUTE);
  const hit = zone.get(m);
  if (hit) return hit;
  const start = localTimeUncached(m * MINUTE, timeZone);
  if (!sameLocal(start, localTimeUncached(m * MINUTE + MINUTE - 1, timeZone))) return localTimeUncached(ms, timeZone);
  if (zone.size >= MAX_CACHED_MINUTES) zone.clear();
  Object.freeze(start);
  zone.set(m, start);
  return start;
}

/**
 * The clock guard. Calendar rules use the *effective* time: the wall time, but
 * never earlier than this token's last tap on this device carried forward by the
 * monotonic clock (same boot), or than that tap's effective time (another boot).
 * So a wall clock set backwards can neither reopen a month's quota, nor a day's
 * cap or meal, nor lift anti-passback; a clock set forward is believed.
 */
export function effectiveTime(tap: Tap, marks: TokenMarks): number {
  const a = marks.anchor;
  if (!a) return tap.wallTime;
  const carried = a.bootId === tap.bootId && tap.monotonicMs >= a.monoMs ? a.effMs + (tap.monotonicMs - a.monoMs) : a.effMs;
  return Math.max(tap.wallTime, carried);
}

/**
 * Time since an earlier event, for windows: the monotonic clock when both are in
 * the same boot, else the difference of effective times (never negative, so a
 * clock set back keeps a window open rather than closing it early).
 */
export function elapsedMs(since: ClockMark, tap: Tap, effMs: number): number {
  if (since.bootId === tap.bootId && tap.monotonicMs >= since.monoMs) return tap.monotonicMs - since.monoMs;
  return Math.max(0, effMs - since.effMs);
}

export function mark(tap: Tap, effMs: number): ClockMark {
  return { effMs, monoMs: tap.monotonicMs, bootId: tap.bootId };
}

/** Is the card past the end of its expiry month (local time)? */
export function isExpired(expiry: string | null | undefined, lt: LocalTime): boolean {
  return typeof expiry === 'string' && lt.month > expiry;
}

/** Kopecks as roubles for a display: 3500 → "35,00" (ru) / "35.00" (en). */
export function rub(kopecks: number, sep: ',' | '.'): string {
  return `${Math.floor(kopecks / 100)}${sep}${String(kopecks % 100).padStart(2, '0')}`;
}
