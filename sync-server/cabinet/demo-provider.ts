import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Identity, IdentityProvider, LoginChecks } from './provider.js';

/**
 * The demo's identity provider (`npm start` only): no external service. Its authorization URL is a page of this server
 * (GET /v1/cabinet/demo-sign-in?state=…) listing the demo's persons by name, one "sign in as" button each; a button goes
 * to the cabinet's normal callback with a one-time code bound to that sign-in's state and nonce, and the code resolves to
 * the person's identity. The cabinet's state, nonce and session handling is the same as for ESIA (service.ts). The
 * provider factory refuses this kind unless the server was started by the demo (provider.ts identityProvider,
 * cabinet.demo-only): anyone could sign in as anyone.
 */

export const DemoPerson = z
  .object({
    /** Stable id within the demo (the subject is demo:ID). */
    id: z.string().regex(/^[a-z0-9-]{1,32}$/),
    name: z.string().min(1).max(100),
    /** 11 digits, linking the person to the registry like ESIA's SNILS (rc-sync-server identities import). */
    snils: z
      .string()
      .regex(/^\d{11}$/)
      .optional(),
  })
  .strict();
export type DemoPerson = z.infer<typeof DemoPerson>;

export const DemoConfig = z
  .object({
    kind: z.literal('demo'),
    persons: z.array(DemoPerson).min(1).max(20),
  })
  .strict();
export type DemoConfig = z.output<typeof DemoConfig>;

/** The page of the demo provider, where the cabinet's login route sends the browser. */
export const DEMO_SIGN_IN_PATH = '/v1/cabinet/demo-sign-in';
const CALLBACK_PATH = '/v1/cabinet/callback';
const TTL_MS = 10 * 60_000;

export interface DemoIdentityProvider extends IdentityProvider {
  readonly kind: 'demo';
  /** The sign-in page for a sign-in in flight (HTML, no script): fresh one-time codes, one per person. cabinet.bad-state for an unknown state. */
  signInPage(state: string): string;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function demoProvider(c: DemoConfig, clock: () => number = Date.now): DemoIdentityProvider {
  /** Sign-ins in flight: state → nonce (what the cabinet's login step made). */
  const pending = new Map<string, { nonce: string; at: number }>();
  /** One-time codes: code → the sign-in and the person it signs in as. */
  const codes = new Map<string, { state: string; person: DemoPerson; at: number }>();
  const prune = (now: number) => {
    for (const [k, v] of pending) if (now - v.at > TTL_MS) pending.delete(k);
    for (const [k, v] of codes) if (now - v.at > TTL_MS) codes.delete(k);
  };
  const dropCodesOf = (state: string) => {
    for (const [k, v] of codes) if (v.state === state) codes.delete(k);
  };
  return {
    kind: 'demo',
    async authorizationUrl(l: LoginChecks) {
      const now = clock();
      prune(now);
      pending.set(l.state, { nonce: l.nonce, at: now });
      return `${DEMO_SIGN_IN_PATH}?state=${encodeURIComponent(l.state)}`;
    },
    signInPage(state: string): string {
      const now = clock();
      prune(now);
      if (!pending.has(state)) throw new RcError(ErrorCode.CabinetBadState, 'this sign-in link is unknown, used or expired');
      // a reload makes new codes; the previous page's buttons no longer work
      dropCodesOf(state);
      const form = (fields: Record<string, string>, label: string, test: string) =>
        `<form method="get" action="${CALLBACK_PATH}">${Object.entries(fields)
          .map(([k, v]) => `<input type="hidden" name="${k}" value="${esc(v)}">`)
          .join('')}<button type="submit" data-test="${esc(test)}">${label}</button></form>`;
      const rows = c.persons.map((p) => {
        const code = randomBytes(24).toString('base64url');
        codes.set(code, { state, person: p, at: now });
        return `<li data-person="${esc(p.id)}"><span>${esc(p.name)}</span> ${form({ code, state }, `Войти как ${esc(p.name)} / Sign in as ${esc(p.name)}`, `as-${p.id}`)}</li>`;
      });
      return [
        '<!doctype html>',
        '<html lang="ru"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        '<title>Демо-вход / Demo sign-in</title><link rel="stylesheet" href="/cabinet/app.css"></head>',
        '<body><main class="card" data-test="demo-sign-in">',
        '<h1>Демо-вход / Demo sign-in</h1>',
        '<p class="muted">Это демо (npm start): вместо Госуслуг выберите человека. / This is the demo (npm start): instead of ESIA, choose a person.</p>',
        `<ul>${rows.join('')}</ul>`,
        form({ error: 'access_denied', state }, 'Отмена / Cancel', 'cancel'),
        '</main></body></html>',
      ].join('\n');
    },
    async identify(query: Record<string, string>, l: LoginChecks): Promise<Identity> {
      const now = clock();
      prune(now);
      const hit = codes.get(query['code'] ?? '');
      const flight = pending.get(l.state);
      // one use: the sign-in's codes and its pending row go whatever happens next
      dropCodesOf(l.state);
      pending.delete(l.state);
      if (!hit || hit.state !== l.state) throw new RcError(ErrorCode.CabinetCodeRejected, 'the demo sign-in code is unknown, used or expired');
      if (!flight || flight.nonce !== l.nonce) throw new RcError(ErrorCode.CabinetBadIdToken, 'the demo sign-in does not match this sign-in (nonce)');
      const p = hit.person;
      return { subject: `demo:${p.id}`, name: p.name, esia: false, ...(p.snils ? { snils: p.snils } : {}) };
    },
  };
}
