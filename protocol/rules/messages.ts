import { ErrorCode } from '../errors.js';
import { isUnreadableReason, type Decision, type DeviceKind, type Reason, type UnreadableReason } from './types.js';
import { rub } from './time.js';

/** Short texts for the passenger's display, Russian first. */
export function display(reason: Reason, fareKopecks: number, result: 'allow' | 'deny', kind: DeviceKind = 'bus'): { ru: string; en: string } {
  const paid = fareKopecks > 0 ? { ru: `Оплата ${rub(fareKopecks, ',')} ₽`, en: `Fare ${rub(fareKopecks, '.')} RUB` } : null;
  switch (reason) {
    case 'ok':
      return result === 'allow' ? { ru: 'Проходите', en: 'Go ahead' } : { ru: 'Отказ', en: 'Refused' };
    case 'benefit':
      if (kind === 'canteen') return { ru: 'Бесплатное питание', en: 'Free meal' };
      return paid ? { ru: `Льгота. ${paid.ru}`, en: `Benefit. ${paid.en}` } : { ru: 'Льгота. Проезд бесплатный', en: 'Benefit. Free ride' };
    case 'full-fare':
      return paid ?? { ru: 'Проходите', en: 'Go ahead' };
    case 'stop-list':
      return { ru: 'Карта заблокирована', en: 'Card blocked' };
    case 'card-expired':
      return { ru: 'Срок действия карты истёк', en: 'Card expired' };
    case 'quota-exhausted':
      return result === 'deny'
        ? { ru: 'Лимит льготных поездок исчерпан', en: 'Benefit trips used up' }
        : { ru: `Лимит льгот исчерпан. ${paid?.ru ?? ''}`.trim(), en: `Benefit trips used up. ${paid?.en ?? ''}`.trim() };
    case 'repeat-tap':
      return { ru: 'Уже оплачено', en: 'Already paid' };
    case 'transfer':
      return paid ? { ru: `Пересадка. ${paid.ru}`, en: `Transfer. ${paid.en}` } : { ru: 'Пересадка бесплатно', en: 'Free transfer' };
    case 'capped':
      return paid
        ? { ru: `Дневной лимит. ${paid.ru}`, en: `Daily cap. ${paid.en}` }
        : { ru: 'Дневной лимит достигнут. Бесплатно', en: 'Daily cap reached. Free' };
    case 'not-enrolled':
      return { ru: 'Нет в списке', en: 'Not enrolled' };
    case 'outside-hours':
      return { ru: 'Вне расписания', en: 'Outside hours' };
    case 'anti-passback':
      return result === 'deny' ? { ru: 'Повторный проход', en: 'Already passed' } : { ru: 'Проходите (повторный проход)', en: 'Go ahead (repeated pass)' };
    case 'meal-already-taken':
      return { ru: 'Питание уже получено', en: 'Meal already taken' };
    case 'paid-meal':
      return { ru: `Платное питание. ${paid?.ru ?? ''}`.trim(), en: `Paid meal. ${paid?.en ?? ''}`.trim() };
    case 'not-entitled':
      return { ru: 'Нет льготы на питание', en: 'No meal entitlement' };
    case 'free-passage':
      return { ru: 'Свободный проход', en: 'Free passage' };
    case 'unknown-route':
      return { ru: 'Маршрут не настроен', en: 'Route not configured' };
    case 'resident':
      return { ru: 'Карта жителя', en: 'Resident card' };
    case 'not-resident':
      return { ru: 'Не карта жителя', en: 'Not a resident card' };
    case ErrorCode.CardNotMir:
      return { ru: 'Принимаются только карты «Мир»', en: 'Mir cards only' };
    case ErrorCode.CardRemoved:
    case ErrorCode.CardTimeout:
      return { ru: 'Приложите карту ещё раз', en: 'Tap the card again' };
  }
  if (isUnreadableReason(reason)) return { ru: 'Карта не читается', en: 'Card cannot be read' };
  return { ru: String(reason), en: String(reason) };
}

/**
 * The decision for a card that could not be read: a deny whose reason is the
 * read's error code (any other code counts as card.bad-response), no fare, no
 * counters. Journaled like any tap, under the runtime's NO_TOKEN.
 */
export function decideUnreadable(kind: DeviceKind, code: string, wallTime: number): Decision {
  const reason: UnreadableReason = isUnreadableReason(code) ? code : ErrorCode.CardBadResponse;
  return {
    kind,
    result: 'deny',
    reason,
    fareKopecks: 0,
    benefit: null,
    display: display(reason, 0, 'deny', kind),
    counterDelta: { add: [], marks: {} },
    effectiveTime: wallTime,
    flags: ['card-unreadable'],
  };
}
