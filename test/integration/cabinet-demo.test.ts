/**
 * The demo's identity provider (sync-server/cabinet/demo-provider.ts): the cabinet's login sends the browser to the
 * server's own sign-in page, a "sign in as" button goes to the normal callback with a one-time code, and the person is
 * linked by SNILS as with ESIA. Outside the demo it is refused (cabinet.demo-only): by the provider factory, by the
 * server, and by `rc-sync-server start --cabinet FILE` even with --dev-token-key.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { identityProvider, parseCabinetConfig } from '../../sync-server/cabinet/provider.js';
import { importIdentities, snilsKey } from '../../sync-server/cabinet/service.js';
import { WEB_CSP } from '../../sync-server/portal/serve.js';
import { ROOT } from '../e2e/runtime-rig.js';
import { expectRcError } from '../support/errors.js';
import { startStack, type Stack } from '../support/sync-harness.js';

const PERSONS = [
  { id: 'anna', name: 'Анна <Очирова>', snils: '11223344595' },
  { id: 'guest', name: 'Гость' },
];
const demoConfig = () => parseCabinetConfig({ provider: { kind: 'demo', persons: PERSONS } });

/** A GET that does not follow redirects. */
const get = (url: string, cookie = '') => fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });

/** The page's one-time code for a person (its hidden input inside that person's row). */
function codeFor(html: string, person: string): string {
  const row = new RegExp(`<li data-person="${person}">.*?name="code" value="([^"]+)"`).exec(html);
  if (!row) throw new Error(`no sign-in button for ${person} in:\n${html}`);
  return row[1]!;
}

describe("the demo's identity provider over HTTP", () => {
  let stack: Stack;
  let base = '';

  /** Login → the demo page: its state and HTML. */
  async function startSignIn(): Promise<{ state: string; html: string; res: Response }> {
    const login = await get(`${base}/v1/cabinet/login?next=/cabinet/`);
    expect(login.status).toBe(302);
    const to = login.headers.get('location')!;
    expect(to).toMatch(/^\/v1\/cabinet\/demo-sign-in\?state=[\w-]+$/);
    const state = new URL(to, base).searchParams.get('state')!;
    const res = await get(`${base}${to}`);
    return { state, html: await res.text(), res };
  }

  beforeAll(async () => {
    // as in the demo: the cabinet on the operator's port (no --public-listen)
    stack = await startStack('embedded', { cabinet: { config: demoConfig(), demo: true }, usageIntervalMs: 0 });
    base = stack.server.httpUrl;
    importIdentities(stack.server.db, snilsKey(stack.dataDir), [{ personId: 'P-ANNA', snils: PERSONS[0]!.snils! }]);
    stack.server.db.prepare("INSERT INTO benefits(person_id, category, valid_from, valid_to) VALUES ('P-ANNA', 'pensioner', '2024-01-01', '2099-12-31')").run();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('login → the server-rendered sign-in page (the pages’ CSP, no script, names escaped) → "sign in as" → a session for the person linked by SNILS', async () => {
    const { state, html, res } = await startSignIn();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(res.headers.get('content-security-policy')).toBe(WEB_CSP);
    expect(html).not.toMatch(/<script|\son\w+=/i);
    expect(html).toContain('Анна &#60;Очирова&#62;');
    expect(html).not.toContain('<Очирова>');
    expect(html).not.toContain(PERSONS[0]!.snils!); // the page lists names only
    const code = codeFor(html, 'anna');
    const cb = await get(`${base}/v1/cabinet/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`);
    expect(cb.status).toBe(302);
    expect(cb.headers.get('location')).toBe('/cabinet/');
    const cookie = /rc_cabinet=[^;]+/.exec(cb.headers.get('set-cookie') ?? '')?.[0];
    expect(cookie).toBeDefined();
    const me = (await (await get(`${base}/v1/cabinet/me`, cookie)).json()) as { holder: { name: string; esia: boolean }; benefits: { category: string }[] };
    expect(me.holder).toEqual({ name: 'Анна <Очирова>', esia: false });
    expect(me.benefits.map((b) => b.category)).toEqual(['pensioner']);
    expect(stack.server.db.prepare("SELECT person_id FROM holder_links WHERE subject = 'demo:anna'").pluck().get()).toBe('P-ANNA');
    // the code was for one use: the same link again is refused
    const again = await get(`${base}/v1/cabinet/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`);
    expect(again.headers.get('location')).toBe(`/cabinet/?error=${ErrorCode.CabinetBadState}`);
  });

  it('a person the registry does not know gets a new person id (no benefits)', async () => {
    const { state, html } = await startSignIn();
    const cb = await get(`${base}/v1/cabinet/callback?code=${encodeURIComponent(codeFor(html, 'guest'))}&state=${encodeURIComponent(state)}`);
    const cookie = /rc_cabinet=[^;]+/.exec(cb.headers.get('set-cookie') ?? '')?.[0];
    const me = (await (await get(`${base}/v1/cabinet/me`, cookie)).json()) as { holder: { name: string }; card: unknown; benefits: unknown[] };
    expect(me).toMatchObject({ holder: { name: 'Гость' }, card: null, benefits: [] });
    expect(stack.server.db.prepare("SELECT person_id FROM holder_links WHERE subject = 'demo:guest'").pluck().get()).toMatch(/^H[0-9A-F]{16}$/);
  });

  it("another sign-in's code, a reloaded page's old code, an unknown state, and Cancel are refused with coded redirects", async () => {
    const first = await startSignIn();
    const second = await startSignIn();
    const cross = await get(`${base}/v1/cabinet/callback?code=${encodeURIComponent(codeFor(first.html, 'anna'))}&state=${encodeURIComponent(second.state)}`);
    expect(cross.headers.get('location')).toBe(`/cabinet/?error=${ErrorCode.CabinetCodeRejected}`);
    expect(cross.headers.get('set-cookie') ?? '').not.toContain('rc_cabinet=');

    const third = await startSignIn();
    const reload = await get(`${base}/v1/cabinet/demo-sign-in?state=${encodeURIComponent(third.state)}`);
    expect(reload.status).toBe(200);
    const stale = await get(`${base}/v1/cabinet/callback?code=${encodeURIComponent(codeFor(third.html, 'anna'))}&state=${encodeURIComponent(third.state)}`);
    expect(stale.headers.get('location')).toBe(`/cabinet/?error=${ErrorCode.CabinetCodeRejected}`);

    const unknown = await get(`${base}/v1/cabinet/demo-sign-in?state=not-a-sign-in`);
    expect(unknown.status).toBe(302);
    expect(unknown.headers.get('location')).toBe(`/cabinet/?error=${ErrorCode.CabinetBadState}`);

    const fourth = await startSignIn();
    expect(fourth.html).toContain('name="error" value="access_denied"');
    const cancel = await get(`${base}/v1/cabinet/callback?error=access_denied&state=${encodeURIComponent(fourth.state)}`);
    expect(cancel.headers.get('location')).toBe(`/cabinet/?error=${ErrorCode.CabinetLoginDeclined}`);
  });
});

describe("the demo's identity provider is refused outside the demo", () => {
  const dir = mkdtempSync(join(tmpdir(), 'rc-demo-idp-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the provider factory refuses kind demo without the demo flag (cabinet.demo-only)', async () => {
    const e = await expectRcError(identityProvider(demoConfig().provider), ErrorCode.CabinetDemoOnly);
    expect(e.message).toContain('outside the demo');
    await expectRcError(identityProvider(demoConfig().provider, { demo: false }), ErrorCode.CabinetDemoOnly);
    expect((await identityProvider(demoConfig().provider, { demo: true })).kind).toBe('demo');
  });

  it('the sign-in page is not found on a server whose provider is not the demo’s', async () => {
    const stack = await startStack('embedded', { usageIntervalMs: 0 });
    try {
      const r = await get(`${stack.server.httpUrl}/v1/cabinet/demo-sign-in?state=x`);
      expect(r.status).toBe(404);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe(ErrorCode.ServerNotFound);
    } finally {
      await stack.close();
    }
  });

  it('rc-sync-server start --cabinet FILE with kind demo exits 1 with cabinet.demo-only, also with --dev-token-key', async () => {
    const file = join(dir, 'cabinet.json');
    writeFileSync(file, JSON.stringify({ provider: { kind: 'demo', persons: PERSONS } }));
    const args = ['start', '--data', join(dir, 'srv'), '--mqtt-port', '0', '--http-port', '0', '--dev-token-key', '--cabinet', file];
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.RC_TOKEN_KEY;
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'sync-server/cli.ts'), ...args], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      c.once('exit', (code) => resolve({ code, stderr }));
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(ErrorCode.CabinetDemoOnly);
  }, 60_000);
});
