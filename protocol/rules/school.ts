import type { SchoolEntry, StopEntry } from '../lists.js';
import type { SchoolRules } from '../rules-schema.js';
import { display } from './messages.js';
import { effectiveTime, isExpired, localTime, mark, type LocalTime } from './time.js';
import type { CounterAdd, Decision, Direction, Reason, Tap, TokenMarks, TurnstileContext, View } from './types.js';

/** Stop-list reasons that also close schools and canteens (a failed bus charge does not). */
export const SCHOOL_STOP_REASONS: ReadonlySet<string> = new Set(['lost', 'stolen', 'fraud']);

export function schoolScope(cfg: { device: { schoolId?: string | undefined } }): string {
  return `school:${cfg.device.schoolId ?? ''}`;
}

/** Enrolled in this school today (dates inclusive, local time)? */
export function enrolled(entry: SchoolEntry | undefined, lt: LocalTime): entry is SchoolEntry {
  return entry !== undefined && lt.date >= entry.validFrom && lt.date <= entry.validTo;
}

export function schoolStopped(stop: StopEntry | null): boolean {
  return stop !== null && SCHOOL_STOP_REASONS.has(stop.reason);
}

function inSchedule(rules: SchoolRules, entry: SchoolEntry, lt: LocalTime): boolean {
  if (rules.holidays.includes(lt.date) && !(entry.role === 'staff' && rules.staffOnHolidays)) return false;
  const windows = rules.schedules[entry.role] ?? [];
  return windows.some((w) => w.days.includes(lt.weekday) && w.from <= lt.hm && lt.hm < w.to);
}

/**
 * School turnstile. Free-passage mode opens for everyone (still journaled).
 * Otherwise: lost/stolen/fraud stop-list → deny `stop-list`; not in this school's
 * list on this local date → `not-enrolled`; card expired → `card-expired`; an
 * entry outside the role's windows or on a holiday → `outside-hours` (exits are
 * always allowed: nobody is locked in); the same direction twice in a row on the
 * same local day → `anti-passback` (hard: deny; soft: allow, flagged).
 */
export function decideTurnstile(tap: Tap, view: View, cfg: TurnstileContext): Decision {
  const rules = cfg.school;
  const eff = effectiveTime(tap, view.marks);
  const lt = localTime(eff, cfg.device.timeZone);
  const direction: Direction = tap.direction ?? 'entry';
  const flags: string[] = [];
  if (tap.wallTime < eff - 60_000) flags.push('clock-behind');
  const now = mark(tap, eff);
  const base: TokenMarks = { ...view.marks, anchor: now };
  const entry = view.schools[schoolScope(cfg)];
  const out = (result: 'allow' | 'deny', reason: Reason, add: CounterAdd[] = [], marks: TokenMarks = base): Decision => ({
    kind: 'turnstile',
    result,
    reason,
    fareKopecks: 0,
    benefit: null,
    display: display(reason, 0, result, 'turnstile'),
    counterDelta: { add, marks },
    effectiveTime: eff,
    flags,
    direction,
  });
  const passed: TokenMarks = { ...base, passage: { ...now, direction, day: lt.date } };

  if (rules.freePassage) return out('allow', 'free-passage', [], passed);
  if (schoolStopped(view.stop)) return out('deny', 'stop-list');
  if (!enrolled(entry, lt)) return out('deny', 'not-enrolled');
  flags.push(`role:${entry.role}`);
  if (isExpired(tap.card.expiry ?? entry.cardExpiry, lt)) return out('deny', 'card-expired');
  if (direction === 'entry' && !inSchedule(rules, entry, lt)) return out('deny', 'outside-hours');
  const p = view.marks.passage;
  if (rules.antiPassback !== 'off' && p && p.day === lt.date && p.direction === direction) {
    if (rules.antiPassback === 'hard') return out('deny', 'anti-passback');
    flags.push('anti-passback-soft');
    return out('allow', 'anti-passback', [], passed);
  }
  return out('allow', 'ok', [], passed);
}
