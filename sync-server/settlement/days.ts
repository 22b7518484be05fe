import { ErrorCode, RcError } from '../../protocol/errors.js';
import { isTimeZone } from '../../protocol/rules-schema.js';
import { localTime } from './core.js';

/** How the back office cuts time into service days and which entry times it believes. */
export interface SettlementOptions {
  /** IANA time zone of the operator's calendar (service days, months of quotas). */
  timeZone: string;
  /** Local time at which a service day ends ("04:00": a tap at 01:30 belongs to the day before); "00:00" = midnight. */
  dayEndsAt: string;
  /** An entry timed more than this after its arrival is left out of settlement (settlement.time-out-of-range). */
  maxFutureMs: number;
  /** An entry timed more than this before its arrival is left out of settlement (settlement.time-out-of-range). */
  maxPastMs: number;
}

export const DEFAULT_SETTLEMENT: SettlementOptions = {
  timeZone: 'Europe/Moscow',
  dayEndsAt: '00:00',
  maxFutureMs: 86_400_000,
  maxPastMs: 400 * 86_400_000, // a bus may come back after weeks in the depot; a year and more is a wrong clock
};

export function settlementOptions(o: Partial<SettlementOptions> = {}): SettlementOptions {
  const r = { ...DEFAULT_SETTLEMENT, ...o };
  if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(r.dayEndsAt)) {
    throw new RcError(ErrorCode.ConfigInvalid, `service day end: expected HH:MM, got "${r.dayEndsAt}"`, { field: 'dayEndsAt' });
  }
  if (!isTimeZone(r.timeZone)) throw new RcError(ErrorCode.ConfigInvalid, `unknown time zone "${r.timeZone}"`, { field: 'timeZone' });
  return r;
}

function offsetMs(o: SettlementOptions): number {
  const [h, m] = o.dayEndsAt.split(':').map(Number) as [number, number];
  return (h * 60 + m) * 60_000;
}

const dayCache = new Map<string, string>();
const BUCKET = 15 * 60_000; // zone offsets change on quarter hours at most

/** The service day (YYYY-MM-DD) an instant belongs to. */
export function serviceDay(ms: number, o: SettlementOptions): string {
  const t = ms - offsetMs(o);
  const key = `${o.timeZone} ${Math.floor(t / BUCKET)}`;
  let d = dayCache.get(key);
  if (d === undefined) {
    d = localTime(t, o.timeZone).date;
    if (dayCache.size > 100_000) dayCache.clear();
    dayCache.set(key, d);
  }
  return d;
}

/** The day before a YYYY-MM-DD date. */
export function dayBefore(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
}

/** A lower bound (epoch ms) for the instants of a service day: its UTC midnight less 2 days covers any zone and day end. */
export function dayLowerBoundMs(day: string): number {
  return Date.parse(`${day}T00:00:00Z`) - 2 * 86_400_000;
}
