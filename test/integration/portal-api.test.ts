import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeasuresAnswer, PartnersAnswer, SchoolsAnswer } from '../../protocol/portal-api.js';
import { importText, startStack, type Stack } from '../support/sync-harness.js';

/**
 * The public portal's JSON (issue 15 item 4) on the real server: no sign-in, partners with their discounts,
 * the schools, the measures in words from the published rules, and cacheable answers (ETag, 304).
 */
describe('public portal JSON', () => {
  let stack: Stack;
  const rules = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'portal', 'rules.json'), 'utf8')) as unknown;
  beforeAll(async () => {
    stack = await startStack('embedded');
    await stack.server.api.setConfig('rules', rules);
    await importText(stack, 'partners', 'partner_id,partner_name,category,discount\nP1,Национальный музей,museum,10\nP2,Магазин «Степь»,shop,3\n');
    await importText(
      stack,
      'enrolments',
      'person_id,school_id,role,grade,meal_category,valid_from,valid_to\np1,S7,student,3,,2026-09-01,2027-05-31\np2,S12,student,5,,2026-09-01,2027-05-31\n',
    );
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${stack.server.httpUrl}${path}`, { headers });

  it('partners: the published rules give the discount by category, and more to some benefit categories', async () => {
    const res = await get('/v1/public/partners');
    expect(res.status).toBe(200);
    const a = PartnersAnswer.parse(await res.json());
    expect(a.partners).toEqual([
      {
        id: 'P1',
        name: 'Национальный музей',
        category: 'museum',
        discountPercent: 10,
        byBenefit: [{ category: 'pensioner', name: { ru: 'Пенсионеры', en: 'Pensioners' }, discountPercent: 50 }],
      },
      { id: 'P2', name: 'Магазин «Степь»', category: 'shop', discountPercent: 5, byBenefit: [] },
    ]);
  });

  it('schools: every school with people enrolled, with its devices', async () => {
    const a = SchoolsAnswer.parse(await (await get('/v1/public/schools')).json());
    expect(a.schools).toEqual([
      { id: 'S7', turnstiles: 0, canteens: 0, ownRules: false },
      { id: 'S12', turnstiles: 0, canteens: 0, ownRules: false },
    ]);
  });

  it('measures: each category of the published tariff, named, with its fare rule and partner discount in words', async () => {
    const a = MeasuresAnswer.parse(await (await get('/v1/public/measures')).json());
    expect(a.tariffVersion).toBe(4);
    expect(a.measures.map((m) => m.category)).toEqual(['pensioner', 'student', 'municipal-employee']);
    expect(a.measures[0]).toEqual({
      category: 'pensioner',
      name: { ru: 'Пенсионеры', en: 'Pensioners' },
      transit: { ru: 'Бесплатный проезд', en: 'Free travel' },
      partners: { ru: 'Скидка 50% у партнёров', en: '50% off at partners' },
    });
    expect(a.measures[2]!.name.en).toBe('Municipal employees');
    expect(a.measures[2]!.transit.ru).toBe('Проезд за 15,50 ₽, 1 поездка в день; сверх этого проезд по карте не разрешён');
  });

  it('answers are cacheable: ETag and Cache-Control, 304 on a matching If-None-Match, a new ETag when the data changes', async () => {
    const first = await get('/v1/public/partners');
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(first.headers.get('cache-control')).toBe('public, max-age=60');
    const again = await get('/v1/public/partners', { 'if-none-match': etag! });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    await importText(stack, 'partners', 'partner_id,partner_name,category,discount\nP3,Театр,theatre,15\n');
    const changed = await get('/v1/public/partners', { 'if-none-match': etag! });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    expect(PartnersAnswer.parse(await changed.json()).partners.map((p) => p.id)).toContain('P3');
  });
});
