/// <reference lib="dom" />
import { currentLang } from '../../../console/web/i18n/index.js';
import { en } from './en.js';
import { ru, type CabinetDict } from './ru.js';

/**
 * The cabinet's and the portal's strings. The language itself is the console's (console/web/i18n: Russian by
 * default, the switch remembered in the browser), so one switch serves every page of the site.
 */
export type CabinetKey = keyof typeof ru;
const DICTS: Record<'ru' | 'en', CabinetDict> = { ru, en };

export function tc(key: CabinetKey): string {
  return DICTS[currentLang()][key];
}
/** A text the server sends in both languages. */
export function both(w: { ru: string; en: string }): string {
  return w[currentLang()];
}
