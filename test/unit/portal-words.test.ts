import { describe, expect, it } from 'vitest';
import { BenefitRule } from '../../protocol/rules-schema.js';
import { categoryName, money, ruPlural, ruleWords } from '../../sync-server/portal/rule-words.js';

/** What a benefit category gives, in words derived from its fare rule (the portal's measures, the cabinet's benefits). */
describe('a fare rule in words', () => {
  const words = (r: unknown) => ruleWords(BenefitRule.parse(r));

  it('free, percent and fixed fares', () => {
    expect(words({ kind: 'free' })).toEqual({ ru: 'Бесплатный проезд', en: 'Free travel' });
    expect(words({ kind: 'percent', percentOff: 50 })).toEqual({ ru: 'Скидка 50% на проезд', en: '50% off the fare' });
    expect(words({ kind: 'percent', percentOff: 100 })).toEqual({ ru: 'Бесплатный проезд', en: 'Free travel' });
    expect(words({ kind: 'fixed', fareKopecks: 1550 })).toEqual({ ru: 'Проезд за 15,50 ₽', en: 'A fare of 15.50 RUB' });
    expect(words({ kind: 'fixed', fareKopecks: 1000 })).toEqual({ ru: 'Проезд за 10 ₽', en: 'A fare of 10 RUB' });
    expect(words({ kind: 'fixed', fareKopecks: 0 })).toEqual({ ru: 'Бесплатный проезд', en: 'Free travel' });
  });

  it('a quota says how many trips, per what, and what happens beyond it', () => {
    expect(words({ kind: 'free', quota: { trips: 22, per: 'month' } })).toEqual({
      ru: 'Бесплатный проезд, 22 поездки в месяц; сверх этого — полный тариф',
      en: 'Free travel, 22 trips a month; beyond that, the full fare',
    });
    expect(words({ kind: 'percent', percentOff: 30, quota: { trips: 1, per: 'day', onExhausted: 'deny' } })).toEqual({
      ru: 'Скидка 30% на проезд, 1 поездка в день; сверх этого проезд по карте не разрешён',
      en: '30% off the fare, 1 trip a day; beyond that the card is refused',
    });
    expect(words({ kind: 'free', quota: { trips: 5, per: 'month' } }).ru).toContain('5 поездок в месяц');
  });

  it('Russian plurals and money', () => {
    expect([1, 2, 4, 5, 11, 12, 14, 21, 22, 25, 101, 111].map((n) => ruPlural(n, 'a', 'b', 'c')).join('')).toBe('abbccccabcac');
    expect(money(5)).toEqual({ ru: '0,05 ₽', en: '0.05 RUB' });
    expect(money(3000)).toEqual({ ru: '30 ₽', en: '30 RUB' });
  });

  it('a category is named by the rules, else by the built-in names, else by its id', () => {
    const tariff = { categories: { 'municipal-employee': { name: { ru: 'Муниципальные', en: 'Municipal' } } } };
    expect(categoryName('municipal-employee', tariff)).toEqual({ ru: 'Муниципальные', en: 'Municipal' });
    expect(categoryName('pensioner', tariff)).toEqual({ ru: 'Пенсионеры', en: 'Pensioners' });
    expect(categoryName('unknown-one', null)).toEqual({ ru: 'unknown-one', en: 'unknown-one' });
  });
});
