import type { BenefitCategory } from '../../protocol/lists.js';
import type { Words } from '../../protocol/portal-api.js';
import type { BenefitRule, Tariff } from '../../protocol/rules-schema.js';

/**
 * What a benefit category gives, in words for people (the public portal's measures, the cabinet's benefits):
 * derived from the published fare rule, so the words never disagree with what the validator does.
 */

/** Names of the eight built-in categories, for rules that do not name them in `tariff.categories`. */
export const BUILT_IN_NAMES: Record<string, Words> = {
  pensioner: { ru: 'Пенсионеры', en: 'Pensioners' },
  disabled: { ru: 'Люди с инвалидностью', en: 'People with disabilities' },
  'disabled-child': { ru: 'Дети с инвалидностью', en: 'Children with disabilities' },
  veteran: { ru: 'Ветераны', en: 'Veterans' },
  'large-family': { ru: 'Многодетные семьи', en: 'Large families' },
  schoolchild: { ru: 'Школьники', en: 'Schoolchildren' },
  student: { ru: 'Студенты', en: 'Students' },
  'low-income': { ru: 'Малоимущие', en: 'Low-income households' },
};

/** A category's name: the rules' own, else the built-in one, else its id. */
export function categoryName(id: BenefitCategory, tariff: Pick<Tariff, 'categories'> | null | undefined): Words {
  return tariff?.categories[id]?.name ?? BUILT_IN_NAMES[id] ?? { ru: id, en: id };
}

/** Russian plural: 1 поездка, 2 поездки, 5 поездок, 21 поездка. */
export function ruPlural(n: number, one: string, few: string, many: string): string {
  const m10 = n % 10;
  const m100 = n % 100;
  if (m10 === 1 && m100 !== 11) return one;
  if (m10 >= 2 && m10 <= 4 && (m100 < 12 || m100 > 14)) return few;
  return many;
}

/** Kopecks as rubles: "15 ₽" / "15,50 ₽" in Russian, "15 RUB" / "15.50 RUB" in English. */
export function money(kopecks: number): Words {
  const rub = Math.floor(kopecks / 100);
  const kop = kopecks % 100;
  const frac = kop === 0 ? '' : String(kop).padStart(2, '0');
  return { ru: `${rub}${frac ? `,${frac}` : ''} ₽`, en: `${rub}${frac ? `.${frac}` : ''} RUB` };
}

/** The fare rule of a benefit category in words: the fare it pays, then its quota and what happens beyond it. */
export function ruleWords(rule: BenefitRule): Words {
  let ru: string;
  let en: string;
  switch (rule.kind) {
    case 'free':
      ru = 'бесплатный проезд';
      en = 'free travel';
      break;
    case 'percent':
      ru = rule.percentOff === 100 ? 'бесплатный проезд' : `скидка ${rule.percentOff}% на проезд`;
      en = rule.percentOff === 100 ? 'free travel' : `${rule.percentOff}% off the fare`;
      break;
    case 'fixed': {
      const m = money(rule.fareKopecks);
      ru = rule.fareKopecks === 0 ? 'бесплатный проезд' : `проезд за ${m.ru}`;
      en = rule.fareKopecks === 0 ? 'free travel' : `a fare of ${m.en}`;
      break;
    }
  }
  const q = rule.quota;
  if (q) {
    const per = q.per === 'month' ? { ru: 'в месяц', en: 'a month' } : { ru: 'в день', en: 'a day' };
    ru += `, ${q.trips} ${ruPlural(q.trips, 'поездка', 'поездки', 'поездок')} ${per.ru}`;
    en += `, ${q.trips} ${q.trips === 1 ? 'trip' : 'trips'} ${per.en}`;
    if (q.onExhausted === 'deny') {
      ru += '; сверх этого проезд по карте не разрешён';
      en += '; beyond that the card is refused';
    } else {
      ru += '; сверх этого — полный тариф';
      en += '; beyond that, the full fare';
    }
  }
  return { ru: ru.charAt(0).toUpperCase() + ru.slice(1), en: en.charAt(0).toUpperCase() + en.slice(1) };
}

/** A partner discount for holders of a category, in words. */
export function partnerWords(percent: number): Words {
  return { ru: `Скидка ${percent}% у партнёров`, en: `${percent}% off at partners` };
}
