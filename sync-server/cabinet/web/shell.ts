/// <reference lib="dom" />
import { h, langSwitch } from '../../console/web/dom.js';
import { currentLang } from '../../console/web/i18n/index.js';
import { BUILT_IN_NAMES } from '../../portal/rule-words.js';
import { both, tc, type CabinetKey } from './i18n/index.js';

/**
 * What the cabinet and the public portal share: the header with the language switch, the offline banner and the
 * service worker's registration (it caches the shell only: never an API answer, never a request body).
 */
export function header(title: CabinetKey, subtitle: CabinetKey, rerender: () => void, extra: HTMLElement[] = []): HTMLElement {
  return h(
    'header',
    { class: 'top' },
    h('div', { class: 'brand' }, h('strong', {}, tc(title)), h('span', {}, tc(subtitle))),
    h('div', { class: 'actions' }, extra, langSwitch(tc('app.lang'), rerender)),
  );
}

/** The banner shown while the browser is offline (or the server did not answer). */
export function offlineBanner(offline: boolean): HTMLElement | null {
  return offline ? h('div', { class: 'offline', role: 'status', 'data-test': 'offline' }, tc('app.offline')) : null;
}

/** Register the service worker of this app (its scope is the app's folder); the app works without it. */
export function registerWorker(): void {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('sw.js').catch(() => undefined);
}

/** Re-render when the browser goes on- or offline. */
export function onConnectivity(rerender: () => void): void {
  window.addEventListener('online', rerender);
  window.addEventListener('offline', rerender);
}

/** YYYY-MM (the registry's card expiry) as printed on a card: MM/YY. */
export function expiryShown(e: string): string {
  const m = /^(\d{4})-(\d{2})$/.exec(e);
  return m ? `${m[2]}/${m[1]!.slice(2)}` : e;
}

/** The republic's time (Kalmykia keeps Moscow time): trips and passages are shown in it whatever the phone's zone. */
export const TIME_ZONE = 'Europe/Moscow';
export const locale = (): string => (currentLang() === 'ru' ? 'ru-RU' : 'en-GB');

/** A time in the republic's zone, as people read it. */
export function fmtAt(iso: string, opts: Intl.DateTimeFormatOptions = { dateStyle: 'short', timeStyle: 'short' }): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(locale(), { ...opts, timeZone: TIME_ZONE });
}

/** The month (YYYY-MM) of a time, in the republic's zone. */
export function monthOf(iso: string): string {
  const p = new Intl.DateTimeFormat('en-CA', { timeZone: TIME_ZONE, year: 'numeric', month: '2-digit' }).formatToParts(new Date(iso));
  return `${p.find((x) => x.type === 'year')!.value}-${p.find((x) => x.type === 'month')!.value}`;
}

/** A date as people read it, in the current language. */
export function fmtDay(day: string | null): string {
  if (!day) return '—';
  const d = new Date(`${day}T12:00:00`);
  return Number.isNaN(d.getTime()) ? day : d.toLocaleDateString(currentLang() === 'ru' ? 'ru-RU' : 'en-GB');
}

export function yesNo(v: boolean): string {
  return tc(v ? 'common.yes' : 'common.no');
}

/** A benefit category's name: the server's, unless it is only the id, then the built-in name (portal/rule-words.ts), else the id. */
export function categoryLabel(id: string, name?: { ru: string; en: string }): string {
  if (name && name.ru !== id) return both(name);
  const builtIn = BUILT_IN_NAMES[id];
  return builtIn ? both(builtIn) : id;
}
