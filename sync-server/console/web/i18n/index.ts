/// <reference lib="dom" />
import { en } from './en.js';
import { ru, type Dict } from './ru.js';

export type Lang = 'ru' | 'en';
export type Key = keyof typeof ru;
const DICTS: Record<Lang, Dict> = { ru, en };
const STORE = 'rc-console-lang';

let lang: Lang = (localStorage.getItem(STORE) as Lang | null) === 'en' ? 'en' : 'ru';

/** Russian by default; the English switch is remembered in localStorage. */
export const currentLang = (): Lang => lang;
export function setLang(l: Lang): void {
  lang = l;
  localStorage.setItem(STORE, l);
  document.documentElement.lang = l;
}
export function t(key: Key): string {
  return DICTS[lang][key];
}
/** A key built at run time (alarm, role, kind): the key itself when the dictionary has none. */
export function tk(key: string): string {
  return (DICTS[lang] as Record<string, string>)[key] ?? key;
}
