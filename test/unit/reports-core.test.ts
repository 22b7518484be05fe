import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestRegistry } from '../support/test-db.js';
import { ErrorCode } from '../../protocol/errors.js';
import { createLogger } from '../../protocol/log.js';
import { ReportDoc, canonicalJson } from '../../protocol/reports.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import { ChargingQueue, SimulatedCharger } from '../../sync-server/charging.js';
import { applyImport, innOk, parseImport, type ImportKind } from '../../sync-server/import.js';
import { Ingest } from '../../sync-server/ingest.js';
import { loadOrCreateSigningKey } from '../../sync-server/keys.js';
import { Publisher } from '../../sync-server/publisher.js';
import { openRegistry, type Db } from '../../sync-server/registry.js';
import { buildReport, signReport, verifyReport } from '../../sync-server/reports/index.js';
import { Settlement } from '../../sync-server/settlement/index.js';
import { expectRcError } from '../support/errors.js';
import { benefitsCsv, cardsCsv, tokenOf } from '../support/registry-csv.js';

/**
 * The data half of the reports (issue 11) over a real registry: journal batches as devices upload them,
 * settled by the back office with test/fixtures/settlement/rules.json (full fare 35 ₽ on routes 1-4,
 * pensioners 50 % for 2 trips a month), charged by the simulator; every figure below worked out by hand.
 */
const log = createLogger({ level: 'silent' });
const RULES = JSON.parse(readFileSync('test/fixtures/settlement/rules.json', 'utf8')) as unknown;
const msk = (local: string) => new Date(Date.parse(`${local}+03:00`)).toISOString();
const OPTS = { now: new Date('2026-12-01T12:00:00Z'), timeZone: 'Europe/Moscow' };
// C1 runs routes 1 and 2; route 2 moves to C2 from 15 November; C2 runs route 3; route 4 has no carrier
const ROUTES_CSV = `carrier_id,carrier_name,inn,route_id,valid_from
C1,ООО «Элиста-Авто»,7707083893,1,2026-01-01
C1,ООО «Элиста-Авто»,7707083893,2,2026-01-01
C2,ИП Бадмаев,500100732259,3,2026-01-01
C2,ИП Бадмаев,500100732259,2,2026-11-15
`;

let dir: string;
let db: Db;
let pub: Publisher;

async function imp(kind: ImportKind, text: string) {
  async function* src() {
    yield text;
  }
  const { rows, report } = await parseImport(kind, src(), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: '2026-11-01' });
  await pub.publish(pub.commit(applyImport(db, kind, rows, '2026-11-01')));
  return report;
}

interface T {
  at: string;
  card: number;
  route: string | null;
  vehicle?: string | null;
  reason: string;
  fare: number;
  benefit?: string;
}
function batch(device: string, taps: T[]): { device: string; entries: WireJournalEntry[] } {
  return {
    device,
    entries: taps.map((t, i) => {
      const data: Record<string, unknown> = { effectiveTime: msk(t.at), flags: ['deferred-charge'] };
      if (t.route !== null) data.route = t.route;
      if (t.vehicle !== null) data.vehicle = t.vehicle ?? `v-${device}`;
      return {
        seq: i + 1,
        time: msk(t.at),
        token: tokenOf(t.card),
        kind: 'bus',
        result: 'allow',
        reason: t.reason,
        fareKopecks: t.fare,
        benefit: t.benefit ?? null,
        lists: { transit: 1 },
        data,
      };
    }),
  };
}
const pens = (at: string, card: number, route: string | null, o: Partial<T> = {}): T => ({
  at,
  card,
  route,
  reason: 'benefit',
  fare: 1750,
  benefit: 'pensioner',
  ...o,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rc-reports-'));
  db = openTestRegistry(dir);
  pub = new Publisher(db, loadOrCreateSigningKey(dir).privateKey, log, {
    manifestTtlMs: 86_400_000,
    deltaRetentionMs: 86_400_000,
    chunkRecords: 100,
    maxDeltaRecords: 1000,
  });
  pub.setTransport({ publish: async () => undefined });
  await imp('cards', cardsCsv(0, 20));
  await imp('benefits', benefitsCsv(10, 5)); // p10..p14 pensioners
  pub.setConfig('rules', RULES);
  await imp('routes', ROUTES_CSV);
  const ingest = new Ingest(db, {});
  const early = new Date('2026-11-26T12:00:00Z');
  ingest.store(
    'bus-a',
    null,
    batch('bus-a', [
      pens('2026-10-31T08:00:00', 10, '1'), // October: not in November's report
      pens('2026-11-03T08:00:00', 10, '1'), // C1 / 1
      pens('2026-11-03T08:03:00', 10, '1', { reason: 'repeat-tap', fare: 0 }), // duplicate
      { at: '2026-11-05T08:00:00', card: 1, route: '1', reason: 'full-fare', fare: 3500 }, // full fare: no compensation; declined
    ]),
    new Date('2026-12-01T10:00:00Z'),
  );
  ingest.store('bus-b', null, batch('bus-b', [pens('2026-11-10T09:00:00', 11, '2'), pens('2026-11-20T09:00:00', 11, '2')]), early); // C1 / 2, then C2 / 2
  ingest.store('bus-c', null, batch('bus-c', [pens('2026-11-21T09:00:00', 11, '3'), pens('2026-11-25T09:00:00', 12, '3')]), early); // 3rd trip of 11: quota exhausted; C2 / 3
  ingest.store(
    'bus-d',
    null,
    batch('bus-d', [
      pens('2026-11-12T10:00:00', 12, '4'), // no carrier
      pens('2026-11-12T12:00:00', 12, null), // no route
      pens('2026-11-13T12:00:00', 12, '99', { vehicle: null }), // unknown route, no vehicle
    ]),
    early,
  );
  const q = new ChargingQueue(db, new SimulatedCharger(db), async (d) => void (await pub.publish(pub.commit(d))), log, new Settlement(db), {
    attempts: 1,
    overDays: 0,
  }); // stop-list at the first decline, as the report expects
  q.setDeclined([tokenOf(1)]);
  await q.runOnce(OPTS.now);
});
afterAll(() => {
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

const section = (doc: ReportDoc, id: string) => doc.sections.find((s) => s.id === id)!;

describe('routes import', () => {
  it('checks the INN check digits', () => {
    expect(innOk('7707083893')).toBe(true);
    expect(innOk('500100732259')).toBe(true);
    expect(innOk('7707083894')).toBe(false);
    expect(innOk('770708389')).toBe(false);
  });

  it('refuses a file with a bad INN whole, naming the line', async () => {
    const e = await expectRcError(
      imp('routes', 'carrier_id,carrier_name,inn,route_id,valid_from\nC3,X,7707083894,7,2026-01-01\n'),
      ErrorCode.ServerImportInvalid,
    );
    expect(e.context?.report).toMatchObject({ rejected: 1, errors: [{ line: 2, column: 'inn' }] });
    expect(db.prepare("SELECT count(*) FROM carriers WHERE id = 'C3'").pluck().get()).toBe(0);
  });
});

describe('compensation report', () => {
  it('counts benefit trips per carrier × route × category, with the carrier in force on each day', () => {
    const doc = buildReport(db, 'compensation', { month: '2026-11' }, OPTS);
    expect(ReportDoc.parse(doc)).toEqual(doc);
    const money = (trips: number) => ({ trips, full_kopecks: 3500 * trips, paid_kopecks: 1750 * trips, compensation_kopecks: 1750 * trips });
    expect(section(doc, 'by-route').rows).toEqual([
      { carrier_id: 'C1', carrier_name: 'ООО «Элиста-Авто»', inn: '7707083893', route: '1', category: 'pensioner', ...money(1) },
      { carrier_id: 'C1', carrier_name: 'ООО «Элиста-Авто»', inn: '7707083893', route: '2', category: 'pensioner', ...money(1) },
      { carrier_id: 'C2', carrier_name: 'ИП Бадмаев', inn: '500100732259', route: '2', category: 'pensioner', ...money(1) },
      { carrier_id: 'C2', carrier_name: 'ИП Бадмаев', inn: '500100732259', route: '3', category: 'pensioner', ...money(1) },
    ]);
    expect(section(doc, 'by-route').totals).toEqual({ carrier_id: 'Итого / Total', ...money(4) });
    expect(section(doc, 'by-carrier').rows.map((r) => [r.carrier_id, r.trips, r.compensation_kopecks])).toEqual([
      ['C1', 2, 3500],
      ['C2', 2, 3500],
    ]);
    expect(section(doc, 'left-out').rows.map((r) => [r.reason, r.taps])).toEqual([
      ['no-route', 1],
      ['unknown-route', 1],
      ['no-carrier', 1],
      ['duplicate', 1],
    ]);
    // 10 bus taps of November (the quota-exhausted one and the full fare are neither paid for nor left out)
    expect(doc.source).toMatchObject({ journalEntries: 10, tariffVersion: 7 });
    expect(doc.notes.map((n) => n.en).join(' ')).toContain('tariff version 7');
    const chart = doc.charts[0]!;
    expect(chart.x).toHaveLength(30);
    expect(chart.series.map((s) => [s.name, s.values.reduce((a, b) => a + b, 0)])).toEqual([
      ['1', 1],
      ['2', 2],
      ['3', 1],
    ]);
    expect(chart.series[1]!.values[9]).toBe(1); // route 2 on 10 November
  });

  it('for one carrier shows only its routes', () => {
    const doc = buildReport(db, 'compensation', { month: '2026-11', carrier: 'C2' }, OPTS);
    expect(section(doc, 'by-route').rows.map((r) => r.route)).toEqual(['2', '3']);
    expect(section(doc, 'by-carrier').totals).toMatchObject({ trips: 2, compensation_kopecks: 3500 });
    expect(doc.params).toEqual({ month: '2026-11', carrier: 'C2' });
  });

  it('a month with no data is an empty, valid report; an unknown carrier is not-found; a future month is a bad request', async () => {
    const doc = ReportDoc.parse(buildReport(db, 'compensation', { month: '2026-06' }, OPTS));
    expect(doc.sections.every((s) => s.rows.length === 0)).toBe(true);
    expect(section(doc, 'by-route').totals).toMatchObject({ trips: 0, compensation_kopecks: 0 });
    await expectRcError(async () => buildReport(db, 'compensation', { month: '2026-11', carrier: 'C9' }, OPTS), ErrorCode.ServerNotFound);
    await expectRcError(async () => buildReport(db, 'compensation', { month: '2027-01' }, OPTS), ErrorCode.ServerBadRequest);
    await expectRcError(async () => buildReport(db, 'compensation', { month: '2026-13' }, OPTS), ErrorCode.ServerBadRequest);
    await expectRcError(async () => buildReport(db, 'charging', {}, OPTS), ErrorCode.ServerBadRequest);
  });
});

describe('charging report', () => {
  it('sums the month by status and names the cards in debt by token and person id', () => {
    const doc = ReportDoc.parse(buildReport(db, 'charging', { month: '2026-11' }, OPTS));
    // charged: card 10 on 3 Nov 17.50; card 11 on 10, 20, 21 Nov 17.50 + 17.50 + 35.00; card 12 on 12, 25 Nov 17.50 + 17.50; declined: card 1 on 5 Nov 35.00
    expect(section(doc, 'by-status').rows.map((r) => [r.status, r.charges, r.amount_kopecks])).toEqual([
      ['charged', 6, 12250],
      ['declined', 1, 3500],
    ]);
    expect(section(doc, 'by-status').totals).toMatchObject({ charges: 7, amount_kopecks: 15750 });
    expect(section(doc, 'by-day').rows.find((r) => r.day === '2026-11-05')).toMatchObject({ declined_n: 1, declined: 3500, charged_n: 0 });
    expect(section(doc, 'debt').rows).toEqual([{ token: tokenOf(1), person_id: 'p1', charges: 1, debt_kopecks: 3500, stop_list_since: expect.any(String) }]);
    expect(section(doc, 'stop-list').rows).toEqual([{ token: tokenOf(1), person_id: 'p1', since: expect.any(String), debt_kopecks: 3500 }]);
    expect(buildReport(db, 'charging', { month: '2026-10' }, OPTS).sections[0]!.rows).toEqual([
      { status: 'charged', charges: 1, taps: 1, amount_kopecks: 1750 },
    ]);
  });
});

describe('devices report', () => {
  it('shows last upload and status, the silent devices and the taps without route or vehicle', () => {
    const doc = ReportDoc.parse(buildReport(db, 'devices', { since: '2026-11-01', silentHours: '24', asOf: '2026-12-01T12:00:00.000Z' }, OPTS));
    const devices = section(doc, 'devices').rows;
    expect(devices.map((r) => [r.device, r.last_upload, r.silent])).toEqual([
      ['bus-a', '2026-12-01T10:00:00.000Z', 'no'],
      ['bus-b', '2026-11-26T12:00:00.000Z', 'yes'],
      ['bus-c', '2026-11-26T12:00:00.000Z', 'yes'],
      ['bus-d', '2026-11-26T12:00:00.000Z', 'yes'],
    ]);
    expect(section(doc, 'silent').rows).toEqual([
      { device: 'bus-b', last_heard: '2026-11-26T12:00:00.000Z', hours_silent: 120 },
      { device: 'bus-c', last_heard: '2026-11-26T12:00:00.000Z', hours_silent: 120 },
      { device: 'bus-d', last_heard: '2026-11-26T12:00:00.000Z', hours_silent: 120 },
    ]);
    expect(section(doc, 'data-quality').rows).toEqual([{ device: 'bus-d', taps: 3, no_route: 1, no_vehicle: 1 }]);
  });
});

describe('deterministic and signed', () => {
  it('the same registry gives the same bytes; a signature verifies; one digit changed is refused', async () => {
    const key = loadOrCreateSigningKey(dir);
    const a = signReport(buildReport(db, 'compensation', { month: '2026-11' }, OPTS), key.privateKey, key.publicKeyPem);
    const b = signReport(
      buildReport(db, 'compensation', { month: '2026-11' }, { ...OPTS, now: new Date('2026-12-20T00:00:00Z') }),
      key.privateKey,
      key.publicKeyPem,
    );
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    const text = JSON.stringify(a, null, 2);
    expect(verifyReport(JSON.parse(text)).sha256).toBe(a.signature!.sha256);
    expect(verifyReport(JSON.parse(text), key.publicKeyPem).doc).toEqual(a);
    // a carrier's compensation 1750 → 1759
    const tampered = text.replace('"compensation_kopecks": 1750', '"compensation_kopecks": 1759');
    expect(tampered).not.toBe(text);
    const e = await expectRcError(async () => verifyReport(JSON.parse(tampered)), ErrorCode.ReportSignatureInvalid);
    expect(e.message).toContain('changed');
    // recomputing the hash does not help without the key
    const forged = JSON.parse(tampered) as ReportDoc;
    const { contentSha256 } = await import('../../sync-server/reports/sign.js');
    forged.signature!.sha256 = contentSha256(forged);
    await expectRcError(async () => verifyReport(forged), ErrorCode.ReportSignatureInvalid);
    // signed by another key than the operator's
    const other = generateKeyPairSync('ed25519');
    const foreign = signReport(JSON.parse(text) as ReportDoc, other.privateKey, other.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    expect(verifyReport(foreign).sha256).toBe(a.signature!.sha256);
    await expectRcError(async () => verifyReport(foreign, key.publicKeyPem), ErrorCode.ReportSignatureInvalid);
    const { signature: _s, ...unsigned } = a;
    await expectRcError(async () => verifyReport(unsigned), ErrorCode.ReportSignatureInvalid);
  });

  it('never holds a PAN', () => {
    const all = ['compensation', 'charging'].map((n) => JSON.stringify(buildReport(db, n as 'charging', { month: '2026-11' }, OPTS))).join('');
    expect(all).not.toMatch(/\d{13,19}/);
  });
});

describe('registry schema 2 → 3', () => {
  it('adds the carriers and route tables and the report index to a schema-2 registry, keeping its journal', () => {
    const d = mkdtempSync(join(tmpdir(), 'rc-reports-mig-'));
    try {
      const old = openRegistry(d);
      old.exec(
        "DROP TABLE schema_migrations; DROP TABLE carriers; DROP TABLE route_carriers; DROP INDEX journal_report; UPDATE meta SET value = '2' WHERE key = 'schema';" +
          "INSERT INTO journal(device, seq, time, kind, result, reason, fare, lists, received_at) VALUES ('bus-x', 1, '2026-11-01T00:00:00Z', 'bus', 'allow', 'full-fare', 3500, '{}', '2026-11-01T00:00:00Z')",
      );
      old.close();
      const reg = openRegistry(d);
      try {
        expect(reg.prepare("SELECT value FROM meta WHERE key = 'schema'").pluck().get()).toBe('3');
        expect(
          reg.prepare("SELECT name FROM sqlite_master WHERE name IN ('carriers', 'route_carriers', 'journal_report') ORDER BY name").pluck().all(),
        ).toEqual(['carriers', 'journal_report', 'route_carriers']);
        expect(reg.prepare('SELECT count(*) FROM journal').pluck().get()).toBe(1);
      } finally {
        reg.close();
      }
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
