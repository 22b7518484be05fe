import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import { applyImport, parseImport } from '../../sync-server/import.js';
import { buildPartners } from '../../sync-server/reports/partners.js';
import { render } from '../../sync-server/reports/render/index.js';
import { expectRcError } from '../support/errors.js';
import { tokenOf } from '../support/registry-csv.js';
import { schoolRegistry, type SchoolRegistry } from '../support/school-journal.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';

/** The partners report over a real registry: partners through the real import, checks through the real journal ingest. */
let reg: SchoolRegistry | null = null;
afterEach(() => {
  reg?.close();
  reg = null;
});

const o = { now: new Date('2026-12-01T12:00:00+03:00'), timeZone: 'Europe/Moscow' };

interface Check {
  at: string;
  card: number;
  result: 'allow' | 'deny';
  percent?: number;
  benefit?: string;
}

function upload(r: SchoolRegistry, device: string, partner: string, checks: Check[]): void {
  const entries: WireJournalEntry[] = checks.map((c, i) => {
    const time = new Date(Date.parse(`${c.at}:00+03:00`)).toISOString();
    return {
      seq: i + 1,
      time,
      token: tokenOf(c.card),
      kind: 'partner',
      result: c.result,
      reason: c.result === 'allow' ? 'resident' : 'not-resident',
      fareKopecks: 0,
      benefit: c.benefit ?? null,
      lists: { transit: 1 },
      data: { effectiveTime: time, flags: [`partner:${partner}`, ...(c.percent !== undefined ? [`discount:${c.percent}`] : [])] },
    };
  });
  r.ingest.store(device, null, { device, entries }, o.now);
}

async function importPartners(r: SchoolRegistry, csv: string): Promise<void> {
  async function* lines() {
    yield csv;
  }
  const { rows } = await parseImport('partners', lines(), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: '2026-11-01' });
  applyImport(r.db, 'partners', rows, '2026-11-01');
}

describe('partners report', () => {
  it('per partner per month: visits, refusals, cards, discounts by percent and benefit, per day; the same bytes twice', async () => {
    reg = await schoolRegistry(4, []);
    await importPartners(reg, 'partner_id,partner_name,category,discount\nmuseum-1,Музей,museum,10\nshop-2,Магазин,shop,5\n');
    upload(reg, 'partner-aaa', 'museum-1', [
      { at: '2026-11-02T10:00', card: 0, result: 'allow', percent: 50, benefit: 'pensioner' },
      { at: '2026-11-02T11:00', card: 1, result: 'allow', percent: 10 },
      { at: '2026-11-03T11:00', card: 1, result: 'allow', percent: 10 },
      { at: '2026-11-03T12:00', card: 3, result: 'deny' },
      { at: '2026-10-31T12:00', card: 2, result: 'allow', percent: 10 }, // last month
    ]);
    upload(reg, 'partner-bbb', 'shop-2', [{ at: '2026-11-05T18:00', card: 2, result: 'allow', percent: 5 }]);
    const doc = buildPartners(reg.db, { month: '2026-11' }, o);
    expect(doc.sections.find((s) => s.id === 'by-partner')!.rows).toEqual([
      { partner_id: 'museum-1', name: 'Музей', category: 'museum', agreed_percent: 10, visits: 3, refused: 1, cards: 2, average_percent: 23.3 },
      { partner_id: 'shop-2', name: 'Магазин', category: 'shop', agreed_percent: 5, visits: 1, refused: 0, cards: 1, average_percent: 5 },
    ]);
    expect(doc.sections.find((s) => s.id === 'discounts')!.rows).toEqual([
      { partner_id: 'museum-1', percent: 10, benefit: '', visits: 2 },
      { partner_id: 'museum-1', percent: 50, benefit: 'pensioner', visits: 1 },
      { partner_id: 'shop-2', percent: 5, benefit: '', visits: 1 },
    ]);
    expect(doc.sections.find((s) => s.id === 'by-day')!.rows.map((r) => [r.partner_id, r.day, r.visits, r.refused])).toEqual([
      ['museum-1', '2026-11-02', 2, 0],
      ['museum-1', '2026-11-03', 1, 1],
      ['shop-2', '2026-11-05', 1, 0],
    ]);
    const one = buildPartners(reg.db, { month: '2026-11', partner: 'shop-2' }, o);
    expect(one.sections[0]!.rows.map((r) => r.partner_id)).toEqual(['shop-2']);
    for (const f of ['json', 'csv', 'xlsx', 'pdf', 'html'] as const)
      expect((await render(doc, f)).equals(await render(buildPartners(reg.db, { month: '2026-11' }, o), f))).toBe(true);
    expect((await render(doc, 'csv')).toString('utf8')).toContain('museum-1');
  });

  it('an unknown partner is server.not-found; a bad month server.bad-request', async () => {
    reg = await schoolRegistry(1, []);
    expectRcError(() => buildPartners(reg!.db, { month: '2026-11', partner: 'nope' }, o), ErrorCode.ServerNotFound);
    expectRcError(() => buildPartners(reg!.db, { month: '2026-13' }, o), ErrorCode.ServerBadRequest);
  });
});
