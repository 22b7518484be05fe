import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { ReportDoc, Row } from '../../protocol/reports.js';
import type { Db } from '../registry.js';
import { bi, cmp, col, dateParam, localToday, type BuildOptions } from './common.js';

/**
 * The fleet: each device's last journal upload and last status (online, last seen, backlog, reader),
 * the devices silent for longer than a threshold at `asOf`, and, since a date, the bus taps journaled
 * without a route or a vehicle (data quality: such taps cannot be paid to a carrier).
 */
export interface DevicesParams {
  since?: string | undefined;
  /** Silent: nothing heard for more than this many hours at asOf (default 24). */
  silentHours?: string | undefined;
  /** The moment "silent" is measured at (ISO); given so the same registry gives the same report. Default: now. */
  asOf?: string | undefined;
}

export function buildDevices(db: Db, p: DevicesParams, o: BuildOptions): ReportDoc {
  const since = dateParam('since', p.since);
  const asOf = p.asOf ?? o.now.toISOString();
  const asOfMs = Date.parse(asOf);
  if (Number.isNaN(asOfMs)) throw new RcError(ErrorCode.ServerBadRequest, `--as-of must be an ISO time, got "${asOf}"`, { param: 'asOf' });
  const hours = Number(p.silentHours ?? '24');
  if (!Number.isInteger(hours) || hours < 1 || hours > 24 * 366) {
    throw new RcError(ErrorCode.ServerBadRequest, `--silent-hours must be a whole number of hours (1..8784), got "${p.silentHours}"`, { param: 'silentHours' });
  }
  const to = localToday(new Date(asOfMs), o.timeZone);
  if (since > to) throw new RcError(ErrorCode.ServerBadRequest, `--since ${since} is in the future`, { param: 'since' });
  const sinceMs = Date.parse(`${since}T00:00:00Z`) - 86_400_000;

  const status = db.prepare('SELECT id, online, last_seen, backlog, reader, lists FROM devices').all() as {
    id: string;
    online: number;
    last_seen: string | null;
    backlog: number;
    reader: string | null;
    lists: string;
  }[];
  const quality = db
    .prepare(
      `SELECT device, count(*) AS taps, count(CASE WHEN route IS NULL THEN 1 END) AS no_route, count(CASE WHEN vehicle IS NULL THEN 1 END) AS no_vehicle
       FROM journal WHERE kind = 'bus' AND eff_ms >= ? AND service_day >= ? GROUP BY device`,
    )
    .all(sinceMs, since) as { device: string; taps: number; no_route: number; no_vehicle: number }[];
  const lastUpload = db.prepare('SELECT received_at FROM journal WHERE device = ? ORDER BY seq DESC LIMIT 1').pluck();
  const ids = [...new Set([...status.map((s) => s.id), ...quality.map((q) => q.device)])].sort(cmp);
  const st = new Map(status.map((s) => [s.id, s]));
  const threshold = hours * 3_600_000;
  const rows: Row[] = [];
  const silent: Row[] = [];
  for (const id of ids) {
    const s = st.get(id);
    const upload = (lastUpload.get(id) as string | undefined) ?? null;
    const heard =
      [s?.last_seen ?? null, upload]
        .filter((x): x is string => x !== null)
        .sort(cmp)
        .pop() ?? null;
    const silentFor = heard === null ? null : Math.max(0, Math.floor((asOfMs - Date.parse(heard)) / 3_600_000));
    const isSilent = heard === null || asOfMs - Date.parse(heard) > threshold;
    rows.push({
      device: id,
      online: s ? (s.online === 1 ? 'yes' : 'no') : 'unknown',
      last_seen: s?.last_seen ?? null,
      last_upload: upload,
      backlog: s?.backlog ?? null,
      reader: s?.reader ?? null,
      lists: s?.lists ?? null,
      silent: isSilent ? 'yes' : 'no',
    });
    if (isSilent) silent.push({ device: id, last_heard: heard, hours_silent: silentFor });
  }
  const qRows: Row[] = quality
    .filter((q) => q.no_route > 0 || q.no_vehicle > 0)
    .sort((a, b) => cmp(a.device, b.device))
    .map((q) => ({ device: q.device, taps: q.taps, no_route: q.no_route, no_vehicle: q.no_vehicle }));
  const qSum = (k: 'taps' | 'no_route' | 'no_vehicle') => qRows.reduce((s, r) => s + (r[k] as number), 0);
  return {
    report: 'devices',
    title: bi('Устройства: связь и качество данных', 'Devices: contact and data quality'),
    params: { since, silentHours: String(hours), asOf },
    period: { from: since, to },
    source: { devices: ids.length, busTaps: quality.reduce((s, q) => s + q.taps, 0) },
    sections: [
      {
        id: 'devices',
        title: bi('Устройства', 'Devices'),
        columns: [
          col('device', 'Устройство', 'Device', 'text'),
          col('online', 'На связи', 'Online', 'text'),
          col('last_seen', 'Последний статус', 'Last status', 'time'),
          col('last_upload', 'Последняя выгрузка журнала', 'Last journal upload', 'time'),
          col('backlog', 'Не выгружено', 'Backlog', 'int'),
          col('reader', 'Считыватель', 'Reader', 'text'),
          col('lists', 'Версии списков', 'List versions', 'text'),
          col('silent', 'Молчит', 'Silent', 'text'),
        ],
        rows,
      },
      {
        id: 'silent',
        title: bi(`Молчат дольше ${hours} ч`, `Silent for more than ${hours} h`),
        columns: [
          col('device', 'Устройство', 'Device', 'text'),
          col('last_heard', 'Последний контакт', 'Last heard', 'time'),
          col('hours_silent', 'Часов', 'Hours', 'int'),
        ],
        rows: silent,
      },
      {
        id: 'data-quality',
        title: bi('Прикладывания без маршрута или транспорта', 'Taps with no route or vehicle'),
        columns: [
          col('device', 'Устройство', 'Device', 'text'),
          col('taps', 'Всего прикладываний', 'Bus taps', 'int'),
          col('no_route', 'Без маршрута', 'No route', 'int'),
          col('no_vehicle', 'Без ТС', 'No vehicle', 'int'),
        ],
        rows: qRows,
        totals: { device: 'Итого / Total', taps: qSum('taps'), no_route: qSum('no_route'), no_vehicle: qSum('no_vehicle') },
      },
    ],
    charts: [],
    notes: [
      bi(`Состояние на ${asOf}; «молчит» — нет связи дольше ${hours} ч.`, `As of ${asOf}; "silent": nothing heard for more than ${hours} h.`),
      bi('Качество данных — с даты начала периода.', 'Data quality counts taps from the start of the period.'),
    ],
  };
}
