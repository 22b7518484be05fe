import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { ReportDoc, ReportName } from '../../protocol/reports.js';
import type { Db } from '../registry.js';
import { buildCharging } from './charging.js';
import type { BuildOptions } from './common.js';
import { buildCompensation } from './compensation.js';
import { buildDevices } from './devices.js';
import { build as buildAttendance } from './attendance.js';
import { build as buildMeals } from './meals.js';
import { buildPartners } from './partners.js';

export { signReport, verifyReport } from './sign.js';
export type { BuildOptions } from './common.js';

/**
 * The reports by name: each builds a `ReportDoc` from the registry and its parameters (strings, as given
 * on the command line or in the query).
 */
type Build = (db: Db, params: Record<string, string | undefined>, o: BuildOptions) => ReportDoc;

export const REPORTS: Partial<Record<ReportName, Build>> = {
  compensation: (db, p, o) => buildCompensation(db, { month: p.month, carrier: p.carrier }, o),
  charging: (db, p, o) => buildCharging(db, { month: p.month }, o),
  devices: (db, p, o) => buildDevices(db, { since: p.since, silentHours: p.silentHours, asOf: p.asOf }, o),
  attendance: (db, p, o) => buildAttendance(db, given(p), { timeZone: o.timeZone }),
  meals: (db, p, o) => buildMeals(db, given(p), { timeZone: o.timeZone }),
  partners: (db, p, o) => buildPartners(db, { month: p.month, partner: p.partner }, o),
};

/** The parameters that were given (a query or command line leaves the others undefined). */
function given(p: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(p).filter((e): e is [string, string] => e[1] !== undefined));
}

export function buildReport(db: Db, name: ReportName, params: Record<string, string | undefined>, o: BuildOptions): ReportDoc {
  const b = REPORTS[name];
  if (!b) throw new RcError(ErrorCode.ServerNotFound, `report "${name}" is not available on this server`, { report: name });
  return b(db, params, o);
}
