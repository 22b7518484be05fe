import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Bilingual, Column, ColumnKind } from '../../protocol/reports.js';

/** What a report is built with besides the registry: the clock (only to refuse a future period) and the operator's time zone. */
export interface BuildOptions {
  now: Date;
  timeZone: string;
}

export const bi = (ru: string, en: string): Bilingual => ({ ru, en });
export const col = (key: string, ru: string, en: string, kind: ColumnKind): Column => ({ key, title: bi(ru, en), kind });

/** Today's date (YYYY-MM-DD) in the operator's time zone. */
export function localToday(now: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
}

/** A month parameter: its first and last day; a month after the current one is server.bad-request. */
export function monthPeriod(month: string | undefined, o: BuildOptions): { from: string; to: string; days: string[] } {
  if (month === undefined || !/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) {
    throw new RcError(ErrorCode.ServerBadRequest, `--month must be YYYY-MM, got "${month ?? ''}"`, { param: 'month' });
  }
  if (month > localToday(o.now, o.timeZone).slice(0, 7)) throw new RcError(ErrorCode.ServerBadRequest, `month ${month} is in the future`, { param: 'month' });
  const [y, m] = month.split('-').map(Number) as [number, number];
  const n = new Date(Date.UTC(y, m, 0)).getUTCDate();
  const days = Array.from({ length: n }, (_, i) => `${month}-${String(i + 1).padStart(2, '0')}`);
  return { from: days[0]!, to: days[n - 1]!, days };
}

/** A date parameter (YYYY-MM-DD). */
export function dateParam(name: string, v: string | undefined): string {
  if (v === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(v) || Number.isNaN(Date.parse(`${v}T00:00:00Z`))) {
    throw new RcError(ErrorCode.ServerBadRequest, `--${name} must be YYYY-MM-DD, got "${v ?? ''}"`, { param: name });
  }
  return v;
}

/** Plain string order (the same on every machine, unlike localeCompare). */
export const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
