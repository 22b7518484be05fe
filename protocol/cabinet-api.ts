import { z } from 'zod';

/**
 * The cardholder's cabinet (issue 15): the JSON routes its pages call (sync-server/http/routes/cabinet.ts), served on
 * the public listener (`--public-listen`), or on the operator listener when there is no public one. A holder signs in
 * through ESIA (or a plain OpenID provider); the session is the HttpOnly cookie `rc_cabinet`; every write carries the
 * session's CSRF token in the `x-csrf-token` header. The card number goes in the POST body only: the server tokenises it
 * in memory and answers the masked PAN, never the number. A holder sees only their own data and their own children's.
 *
 *   GET  /v1/cabinet/login?next=/cabinet/                 302 to the identity provider
 *   GET  /v1/cabinet/callback?code&state                  sets the cookie rc_cabinet, 302 to next (or to /cabinet/?error=CODE)
 *   POST /v1/cabinet/logout                               ends the session
 *   GET  /v1/cabinet/me                                   who I am, my card, my benefits, my children, the server's today
 *                                                         (401 auth.unauthenticated)
 *   POST /v1/cabinet/card {pan, expiry}                   connect or replace my card (400 card.bad-pan/card.bad-expiry,
 *                                                         409 cabinet.card-taken, 429 cabinet.connect-locked)
 *   GET  /v1/cabinet/trips?from=YYYY-MM-DD&to=YYYY-MM-DD  my trips from the settled journal (at most 12 months back), of
 *                                                         every card I have had, each with the card's masked number
 *   GET  /v1/cabinet/children/:personId/days?from&to      my child's passages and meals (403 auth.forbidden otherwise)
 *   GET  /v1/cabinet/debts                                declined charges and how to pay them
 */

/** Text in both languages of the cabinet. */
export const Text2 = z.object({ ru: z.string(), en: z.string() }).strict();
export type Text2 = z.infer<typeof Text2>;

/** A calendar day, YYYY-MM-DD. */
export const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date: YYYY-MM-DD');

/** Where to go after sign-in: a path on this site only (never another origin). */
export const NextPath = z
  .string()
  .max(200)
  .regex(/^\/(?!\/)[A-Za-z0-9/_.?=&%-]*$/, 'a path on this site')
  .default('/cabinet/');
export const LoginQuery = z.object({ next: NextPath });
export type LoginQuery = z.infer<typeof LoginQuery>;

/** What the identity provider sends back to the callback (an error instead of a code when the person declined). */
export const CallbackQuery = z.object({
  code: z.string().max(4096).optional(),
  state: z.string().max(200).optional(),
  error: z.string().max(200).optional(),
  error_description: z.string().max(1000).optional(),
});
export type CallbackQuery = z.infer<typeof CallbackQuery>;

/** The demo's sign-in page (npm start only): the state of the sign-in in flight, as the login route's redirect gives it. */
export const DemoSignInQuery = z.object({ state: z.string().min(1).max(200) });
export type DemoSignInQuery = z.infer<typeof DemoSignInQuery>;

export const CardStatus = z.enum(['active', 'pending', 'stopped']);
export type CardStatus = z.infer<typeof CardStatus>;

/** The holder's connected card: never the number, only the masked PAN. */
export const CabinetCard = z
  .object({
    masked: z.string(),
    /** As the registry keeps it: YYYY-MM. */
    expiry: z.string(),
    /** active: on the published lists; pending: connected, not yet in a published list version; stopped: on the stop-list. */
    status: CardStatus,
    /** Why the card is stopped and what to do, when it is. */
    stopReason: z.string().optional(),
    /** When the card was connected (ISO time). */
    since: z.string(),
  })
  .strict();
export type CabinetCard = z.infer<typeof CabinetCard>;

export const Benefit = z
  .object({
    category: z.string(),
    name: Text2,
    /** The fare rule in words (e.g. "free", "50% of the fare, 18 trips a month"). */
    rule: Text2,
    validFrom: z.string().nullable(),
    validTo: z.string().nullable(),
  })
  .strict();
export type Benefit = z.infer<typeof Benefit>;

export const Child = z.object({ personId: z.string(), name: z.string() }).strict();
export type Child = z.infer<typeof Child>;

export const MeAnswer = z
  .object({
    holder: z.object({ name: z.string(), esia: z.boolean() }).strict(),
    /** Send it back in the x-csrf-token header on every POST. */
    csrf: z.string(),
    card: CabinetCard.nullable(),
    benefits: z.array(Benefit),
    children: z.array(Child),
    /**
     * The server's today (YYYY-MM-DD, UTC, the day the trips and school-days ranges count back from): the pages ask for
     * the days up to it, not up to the phone's date. In the demo (npm start) it is the scripted demo day.
     */
    today: Day,
  })
  .strict();
export type MeAnswer = z.infer<typeof MeAnswer>;

/** A card as typed by the holder (or by staff for them): the number and the expiry printed on the card (MM/YY, MMYY, MM/YYYY, MM.YY). */
export const CardBody = z.object({
  pan: z
    .string()
    .max(40)
    .transform((s) => s.replace(/[\s-]/g, '')),
  expiry: z.string().max(10),
});
export type CardBody = z.infer<typeof CardBody>;

/** What connectCard did (sync-server/cabinet/connect.ts). */
export const ConnectResult = z
  .object({
    status: z.enum(['connected', 'replaced', 'unchanged']),
    /** The card this one replaced. */
    previousMasked: z.string().optional(),
    /** The list version in which the change is published (when the lists were published at once). */
    effectiveListVersion: z.number().int().optional(),
  })
  .strict();
export type ConnectResult = z.infer<typeof ConnectResult>;

export const CardAnswer = z.object({ card: CabinetCard, result: ConnectResult }).strict();
export type CardAnswer = z.infer<typeof CardAnswer>;

export const RangeQuery = z.object({ from: Day.optional(), to: Day.optional() });
export type RangeQuery = z.infer<typeof RangeQuery>;

export const Trip = z
  .object({
    /** Effective time of the tap (ISO). */
    time: z.string(),
    route: z.string().nullable(),
    vehicle: z.string().nullable(),
    /** What the trip cost the holder. */
    fareKopecks: z.number().int(),
    /** The benefit category applied, if any. */
    benefit: z.string().nullable(),
    reason: z.string().nullable(),
    /** The card the trip was made with, masked (a person who replaced their card sees the old card's trips too). */
    card: z.string(),
  })
  .strict();
export type Trip = z.infer<typeof Trip>;
export const TripsAnswer = z.object({ trips: z.array(Trip) }).strict();
export type TripsAnswer = z.infer<typeof TripsAnswer>;

export const ChildParams = z.object({ personId: z.string().min(1).max(64) });
export const ChildDay = z
  .object({
    day: Day,
    /** Passages through the school's turnstiles: time, direction (entry, exit) as the turnstile recorded it, and allowed or not. */
    passages: z.array(z.object({ time: z.string(), direction: z.string().nullable(), result: z.string(), device: z.string() }).strict()),
    /** Meals at the canteen: time, the meal, allowed or not, the benefit applied. */
    meals: z.array(z.object({ time: z.string(), meal: z.string().nullable(), result: z.string(), benefit: z.string().nullable() }).strict()),
  })
  .strict();
export type ChildDay = z.infer<typeof ChildDay>;
export const ChildDaysAnswer = z.object({ child: Child, days: z.array(ChildDay) }).strict();
export type ChildDaysAnswer = z.infer<typeof ChildDaysAnswer>;

export const Debt = z
  .object({
    serviceDay: Day,
    amountKopecks: z.number().int(),
    status: z.string(),
    /** The masked number of the card charged (a replaced card's debt stays the holder's). */
    card: z.string(),
    howToPay: Text2,
  })
  .strict();
export type Debt = z.infer<typeof Debt>;
export const DebtsAnswer = z.object({ debts: z.array(Debt) }).strict();
export type DebtsAnswer = z.infer<typeof DebtsAnswer>;

export const LogoutAnswer = z.object({ ok: z.literal(true) }).strict();

/** The staff-assisted path: POST /v1/console/holders/:personId/card {pan, expiry} (operator console, WRITERS). */
export const HolderParams = z.object({ personId: z.string().min(1).max(64) });
export const StaffCardAnswer = z.object({ personId: z.string(), masked: z.string(), expiry: z.string(), result: ConnectResult }).strict();
export type StaffCardAnswer = z.infer<typeof StaffCardAnswer>;
