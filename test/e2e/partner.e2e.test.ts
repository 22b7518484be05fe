/**
 * Issue 14 item 3: a partner's resident check through `rc-device run`, as processes. The operator
 * imports the partner and publishes the partner rules; the technician provisions the device with
 * `--partner` (rc-provision init's code path); a private pcscd + vpcd serves virtual Mir cards; the
 * display speaks RCP/1 on a socat pty. A resident sees «Карта жителя: скидка N%», a stranger
 * «Не карта жителя»; both are journaled, reach the server, stay out of fare settlement and appear in
 * the partners report (HTTP route and every rendered format).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { withLuhnDigit } from '../../protocol/pan.js';
import { ReportDoc } from '../../protocol/reports.js';
import { Settlement } from '../../sync-server/settlement/index.js';
import { render as renderReport } from '../../sync-server/reports/render/index.js';
import { operatorFetch } from '../support/operator-api.js';
import { linesOf, startDisplayDeviceRig, until, type DisplayDeviceRig } from './runtime-rig.js';

const PAN = {
  pensioner: withLuhnDigit('220070000000205'),
  resident: withLuhnDigit('220070000000206'),
  stranger: withLuhnDigit('220070000000207'),
};
const PARTNERS = { categories: { museum: { discountPercent: 10, byBenefit: { pensioner: 50 } }, shop: { discountPercent: 5 } } };

let rig: DisplayDeviceRig;
const tap = (pan: string) => rig.tap(pan);
const shown = (text: string) => rig.shown(text);

describe('partner resident check in service: provisioned with --partner, rc-device run, pcscd, RCP/1 display, report', () => {
  beforeAll(async () => {
    rig = await startDisplayDeviceRig({
      friendlyName: 'RC Partner PCD',
      device: { kind: 'partner', partner: 'museum-1' },
      listScope: 'transit',
      async seed(srv) {
        const api = srv.server.api;
        const cards = ['person_id,pan,psn,expiry', `P-PEN,${PAN.pensioner},01,2029-06`, `P-RES,${PAN.resident},01,2029-06`];
        await api.importCsv('cards', linesOf(cards.join('\n')), false);
        await api.importCsv('benefits', linesOf(['person_id,category,valid_from,valid_to', 'P-PEN,pensioner,2020-01-01,2030-12-31'].join('\n')), false);
        await api.importCsv('partners', linesOf(['partner_id,partner_name,category,discount', 'museum-1,Национальный музей,museum,10'].join('\n')), false);
        await api.setConfig('rules-partner', { schema: 1, partners: PARTNERS });
      },
    });
  }, 120_000);

  afterAll(() => rig?.close(), 60_000);

  it('a pensioner sees 50 %, a resident 10 %, a stranger «Не карта жителя»; all journaled on the server', async () => {
    const { srv, dev, deviceId } = rig;
    expect((await dev.status()).device).toMatchObject({ id: deviceId, kind: 'partner', partnerId: 'museum-1' });
    expect(await tap(PAN.pensioner)).toMatchObject({ result: 'allow', reason: 'resident', benefit: 'pensioner', fareKopecks: 0 });
    await shown('Карта жителя: скидка 50%');
    expect(await tap(PAN.resident)).toMatchObject({ result: 'allow', reason: 'resident', benefit: null });
    await shown('Карта жителя: скидка 10%');
    expect(await tap(PAN.stranger)).toMatchObject({ result: 'deny', reason: 'not-resident' });
    await shown('Не карта жителя');
    await until(() => srv.journal(deviceId).length === 3, 15_000, 'the partner journal on the server');
    const rows = srv.server.db.prepare('SELECT seq, kind, result, reason, fare, benefit, flags FROM journal WHERE device = ? ORDER BY seq').all(deviceId);
    expect(rows).toEqual([
      { seq: 1, kind: 'partner', result: 'allow', reason: 'resident', fare: 0, benefit: 'pensioner', flags: '["partner:museum-1","discount:50"]' },
      { seq: 2, kind: 'partner', result: 'allow', reason: 'resident', fare: 0, benefit: null, flags: '["partner:museum-1","discount:10"]' },
      { seq: 3, kind: 'partner', result: 'deny', reason: 'not-resident', fare: 0, benefit: null, flags: '["partner:museum-1"]' },
    ]);
    const all = JSON.stringify(srv.server.db.prepare('SELECT * FROM journal').all()) + dev.logs.join('\n');
    for (const pan of Object.values(PAN)) expect(all).not.toContain(pan);
  });

  it('fare settlement leaves the checks out as settlement.not-a-fare; the partners report counts visits, refusals and discounts', async () => {
    const { srv, deviceId } = rig;
    new Settlement(srv.server.db).settleDirty(); // the server's periodic settlement, run now
    const settled = srv.server.db.prepare('SELECT settle_code, settled_fare FROM journal WHERE device = ?').all(deviceId);
    expect(settled).toEqual(Array(3).fill({ settle_code: ErrorCode.SettlementNotAFare, settled_fare: null }));
    const month = (srv.server.db.prepare('SELECT service_day FROM journal WHERE device = ?').pluck().get(deviceId) as string).slice(0, 7); // Moscow-local
    const res = await operatorFetch({ httpUrl: srv.server.httpUrl, dataDir: srv.dataDir }, `/v1/reports/partners?month=${month}&partner=museum-1`);
    expect(res.status).toBe(200);
    const doc = ReportDoc.parse(await res.json());
    expect(doc.signature?.alg).toBe('ed25519');
    const byPartner = doc.sections.find((s) => s.id === 'by-partner')!;
    expect(byPartner.rows).toEqual([
      { partner_id: 'museum-1', name: 'Национальный музей', category: 'museum', agreed_percent: 10, visits: 2, refused: 1, cards: 2, average_percent: 30 },
    ]);
    expect(doc.sections.find((s) => s.id === 'discounts')!.rows).toEqual([
      { partner_id: 'museum-1', percent: 10, benefit: '', visits: 1 },
      { partner_id: 'museum-1', percent: 50, benefit: 'pensioner', visits: 1 },
    ]);
    for (const format of ['csv', 'xlsx', 'pdf', 'html'] as const) expect((await renderReport(doc, format)).length).toBeGreaterThan(100);
    const unknown = await operatorFetch({ httpUrl: srv.server.httpUrl, dataDir: srv.dataDir }, `/v1/reports/partners?month=${month}&partner=nope`);
    expect(unknown.status).toBe(404);
    expect(JSON.stringify(await unknown.json())).toContain(ErrorCode.ServerNotFound);
  });
});
