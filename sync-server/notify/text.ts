import { localTime } from '../../protocol/rules/index.js';
import type { NotifyEvent } from './guardians.js';
import type { Facts } from './outbox.js';

const MEALS: Record<string, string> = { breakfast: 'завтрак', lunch: 'обед', snack: 'полдник', dinner: 'ужин' };

const ruDate = (isoDay: string) => `${isoDay.slice(8, 10)}.${isoDay.slice(5, 7)}.${isoDay.slice(0, 4)}`;

/**
 * The message in Russian: the child's name as the guardian gave it, the school, the local time, the gate's direction
 * or the meal. Nothing else: no card number, no token, no person_id.
 */
export function messageText(event: NotifyEvent, f: Facts, timeZone: string): { subject: string; text: string; localTime: string } {
  const t = localTime(f.ms, timeZone);
  const when = `${ruDate(t.date)} в ${t.hm}`;
  const school = f.school ? `школ${event === 'exit' ? 'ы' : 'у'} ${f.school}` : event === 'exit' ? 'школы' : 'школу';
  switch (event) {
    case 'entry':
      return { subject: `${f.child}: вход в школу`, text: `${when}: ${f.child} — вход в ${school}.`, localTime: `${t.date} ${t.hm}` };
    case 'exit':
      return { subject: `${f.child}: выход из школы`, text: `${when}: ${f.child} — выход из ${school}.`, localTime: `${t.date} ${t.hm}` };
    case 'meal': {
      const meal = f.meal ? (MEALS[f.meal] ?? f.meal) : 'питание';
      const where = f.school ? ` в столовой школы ${f.school}` : ' в школьной столовой';
      return { subject: `${f.child}: ${meal}`, text: `${when}: ${f.child} — ${meal}${where}.`, localTime: `${t.date} ${t.hm}` };
    }
    case 'absent': {
      const day = f.day ?? t.date;
      const where = f.school ? `в школу ${f.school}` : 'в школу';
      return {
        subject: `${f.child}: не пришёл(-ла) в школу`,
        text: `${ruDate(day)}: ${f.child} не прошёл(-ла) ${where} до ${f.by ?? t.hm}.`,
        localTime: `${day} ${f.by ?? t.hm}`,
      };
    }
  }
}
