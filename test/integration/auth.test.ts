/**
 * Issue 12 items 1, 2, 5 on the real server over real HTTP: every role route of the table refuses a caller
 * without valid credentials (401) or of a role it does not admit (403); the console's session (cookie, CSRF,
 * expiry, sign-out, rate limit); carrier and school scoping of reports; the audit log; /metrics and /healthz.
 * Credentials are the subject here, so these tests call fetch() themselves instead of operatorFetch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../protocol/roles.js';
import { ROLES } from '../../protocol/roles.js';
import { ErrorCode } from '../../protocol/errors.js';
import { createToken, revokeToken } from '../../sync-server/auth/tokens.js';
import { addUser } from '../../sync-server/auth/users.js';
import { ROUTES } from '../../sync-server/http/routes/index.js';
import { adminToken, operatorFetch } from '../support/operator-api.js';
import { cardsCsv, tokenOf } from '../support/registry-csv.js';
import { busConfig, importText, openDevice, startStack, tap, type Device, type Stack } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';

let stack: Stack;
const tokens = {} as Record<Role, string>;
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  stack = await startStack('embedded');
  const db = stack.server.db;
  for (const role of ROLES)
    tokens[role] = createToken(db, {
      role,
      name: `t-${role}`,
      ...(role === 'school' ? { school: 'S1' } : {}),
      ...(role === 'carrier' ? { carrier: 'C7' } : {}),
    }).token;
  await addUser(db, { name: 'olga', role: 'operator', password: PASSWORD });
  await addUser(db, { name: 'rita', role: 'operator', password: PASSWORD });
  await addUser(db, { name: 'sasha', role: 'operator', password: PASSWORD });
  await importText(
    stack,
    'routes',
    'carrier_id,carrier_name,inn,route_id,valid_from\nC7,Элиста-Авто,7707083893,7,2026-01-01\nC12,ИП Бадмаев,500100732259,12,2026-01-01\n',
  );
});
afterAll(async () => {
  await stack?.close();
});

const url = (path: string) => `${stack.server.httpUrl}${path}`;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
/** A JSON body, or a CSV one (a string: the CSV import). */
async function call(method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
  const csv = typeof body === 'string';
  const r = await fetch(url(path), {
    method,
    headers: { ...(body !== undefined ? { 'content-type': csv ? 'text/csv' : 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: csv ? body : JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  let json: { error?: { code: string } } & Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    // a text answer (metrics, healthz, CSV)
  }
  return { status: r.status, json, text, headers: r.headers };
}

/** Every operator route whose access is a role list, with its path parameters filled in (refusal comes before validation). */
const roleRoutes = ROUTES.filter((r) => Array.isArray(r.access) && r.listeners.includes('operator')).map((r) => ({
  method: r.method,
  path: r.url.replace(/:(\w+)/g, (_m, p: string) => (p === 'kind' ? 'cards' : p === 'name' ? 'compensation' : 'x')),
  access: r.access as readonly Role[],
  body: r.method === 'GET' ? undefined : r.csv ? 'person_id,pan,psn,expiry\n' : {},
}));

describe('every role route of the table refuses callers without valid credentials', () => {
  it('covers the table: the console, accounts, audit and metrics routes are role routes', () => {
    const paths = roleRoutes.map((r) => `${r.method} ${r.path}`);
    for (const p of ['GET /v1/status', 'POST /v1/import/cards', 'GET /v1/users', 'POST /v1/tokens', 'GET /v1/audit', 'GET /metrics'])
      expect(paths).toContain(p);
  });

  it('no credentials, a wrong token, an expired token or a revoked token: 401 auth.unauthenticated, nothing done', async () => {
    const db = stack.server.db;
    const expired = createToken(db, { role: 'admin', name: 'expired', ttlSec: 60 });
    db.prepare("UPDATE api_tokens SET expires_at = '2020-01-01T00:00:00.000Z' WHERE id = ?").run(expired.info.id);
    const revoked = createToken(db, { role: 'admin', name: 'revoked' });
    revokeToken(db, revoked.info.id);
    const wrong = tokens.admin.slice(0, -4) + 'AAAA';
    const auditBefore = db.prepare('SELECT count(*) FROM audit').pluck().get();
    for (const r of roleRoutes) {
      const body = r.body;
      const variants: Record<string, string>[] = [
        {},
        bearer(wrong),
        bearer(expired.token),
        bearer(revoked.token),
        { authorization: 'Basic YWRtaW46YWRtaW4=' },
        { cookie: 'rc_session=nope' },
      ];
      for (const headers of variants) {
        const a = await call(r.method, r.path, headers, body);
        expect({ route: `${r.method} ${r.path}`, status: a.status, code: a.json.error?.code }).toEqual({
          route: `${r.method} ${r.path}`,
          status: 401,
          code: ErrorCode.AuthUnauthenticated,
        });
      }
    }
    expect(db.prepare('SELECT count(*) FROM audit').pluck().get()).toBe(auditBefore);
  });

  it('a role the route does not admit: 403 auth.forbidden, for every role route and every such role', async () => {
    let refused = 0;
    for (const r of roleRoutes)
      for (const role of ROLES.filter((x) => !r.access.includes(x))) {
        const a = await call(r.method, r.path, bearer(tokens[role]), r.body);
        expect({ route: `${r.method} ${r.path}`, role, status: a.status, code: a.json.error?.code }).toEqual({
          route: `${r.method} ${r.path}`,
          role,
          status: 403,
          code: ErrorCode.AuthForbidden,
        });
        refused++;
      }
    expect(refused).toBeGreaterThan(20);
  });

  it('the role matrix: what each role may do, on a sample of routes', async () => {
    const rules = { name: 'rules', rules: { schema: 1, tariff: busConfig('bus-07-a123').tariff } };
    const cases: [Role, string, string, unknown, number][] = [
      ['admin', 'GET', '/v1/users', undefined, 200],
      ['admin', 'POST', '/v1/config', rules, 200],
      ['operator', 'POST', '/v1/config', rules, 200],
      ['operator', 'GET', '/v1/journal?limit=5', undefined, 200],
      ['operator', 'GET', '/v1/users', undefined, 403],
      ['operator', 'GET', '/v1/audit', undefined, 403],
      ['auditor', 'GET', '/v1/status', undefined, 200],
      ['auditor', 'GET', '/v1/audit', undefined, 200],
      ['auditor', 'POST', '/v1/config', rules, 403],
      ['auditor', 'POST', '/v1/charging/run', {}, 403],
      ['school', 'GET', '/v1/status', undefined, 403],
      ['school', 'GET', '/v1/journal', undefined, 403],
      ['school', 'GET', '/v1/reports/attendance?school=S1&month=2026-11', undefined, 200],
      ['carrier', 'GET', '/v1/journal', undefined, 403],
      ['carrier', 'POST', '/v1/import/cards', 'person_id,pan,psn,expiry\n', 403],
      ['carrier', 'GET', '/v1/reports/compensation?month=2026-11', undefined, 200],
    ];
    for (const [role, method, path, body, status] of cases) {
      const a = await call(method, path, bearer(tokens[role]), body);
      expect({ role, method, path, status: a.status }).toEqual({ role, method, path, status });
    }
  });
});

describe('reports are scoped for carrier and school accounts', () => {
  it('a carrier gets its own compensation only: another carrier or another report is auth.forbidden; no carrier means its own', async () => {
    const t = bearer(tokens.carrier);
    const own = await call('GET', '/v1/reports/compensation?month=2026-11', t);
    expect(own.status).toBe(200);
    expect((own.json as { params: Record<string, string> }).params).toMatchObject({ carrier: 'C7' });
    expect(await call('GET', '/v1/reports/compensation?month=2026-11&carrier=C7', t)).toMatchObject({ status: 200 });
    for (const p of ['/v1/reports/compensation?month=2026-11&carrier=C12', '/v1/reports/charging?month=2026-11', '/v1/reports/devices?since=2026-11-01'])
      expect((await call('GET', p, t)).json.error?.code, p).toBe(ErrorCode.AuthForbidden);
    // the admin sees every carrier
    const all = await call('GET', '/v1/reports/compensation?month=2026-11', bearer(tokens.admin));
    expect((all.json as { params: Record<string, string> }).params.carrier).toBeUndefined();
  });

  it("a school gets its own school's attendance and meals only, never fleet-wide data", async () => {
    const t = bearer(tokens.school);
    const own = await call('GET', '/v1/reports/attendance?month=2026-11', t);
    expect(own.status).toBe(200);
    expect((own.json as { params: Record<string, string> }).params).toMatchObject({ school: 'S1' });
    for (const p of [
      '/v1/reports/attendance?school=S2&month=2026-11',
      '/v1/reports/meals?school=S2&month=2026-11',
      '/v1/reports/compensation?month=2026-11',
      '/v1/reports/devices?since=2026-11-01',
    ]) {
      const a = await call('GET', p, t);
      expect({ p, status: a.status, code: a.json.error?.code }).toEqual({ p, status: 403, code: ErrorCode.AuthForbidden });
    }
  });
});

describe('console sessions', () => {
  async function login(username: string, password = PASSWORD) {
    const r = await call('POST', '/v1/session', {}, { username, password });
    const cookie = r.headers.get('set-cookie') ?? '';
    return { ...r, cookie, session: /rc_session=([^;]*)/.exec(cookie)?.[1] ?? '', csrf: (r.json as { csrf?: string }).csrf ?? '' };
  }

  it('sign-in sets an HttpOnly, SameSite=Strict, Secure cookie on Path=/ and answers the user and a CSRF token', async () => {
    const s = await login('olga');
    expect(s.status).toBe(200);
    expect(s.json).toMatchObject({ user: { name: 'olga', role: 'operator' } });
    expect(s.csrf.length).toBeGreaterThan(20);
    expect(s.cookie).toMatch(/HttpOnly/i);
    expect(s.cookie).toMatch(/SameSite=Strict/i);
    expect(s.cookie).toMatch(/Secure/i);
    expect(s.cookie).toMatch(/Path=\//);
    // the registry keeps only the hash of the session id
    expect(JSON.stringify(stack.server.db.prepare('SELECT * FROM sessions').all())).not.toContain(s.session);
    const again = await call('GET', '/v1/session', { cookie: `rc_session=${s.session}` });
    expect(again).toMatchObject({ status: 200, json: { user: { name: 'olga', role: 'operator' }, csrf: s.csrf } });
    expect(await call('GET', '/v1/status', { cookie: `rc_session=${s.session}` })).toMatchObject({ status: 200 });
  });

  it('a cookie-authenticated write without the x-csrf-token header (or with a wrong one) is 403 auth.csrf and changes nothing', async () => {
    const s = await login('olga');
    const cookie = `rc_session=${s.session}`;
    const before = stack.server.db.prepare('SELECT count(*) FROM enrol_tokens').pluck().get();
    const body = { kind: 'bus', route: '7', ttlSec: 3600 };
    expect(await call('POST', '/v1/enrol-tokens', { cookie }, body)).toMatchObject({ status: 403, json: { error: { code: ErrorCode.AuthCsrf } } });
    expect(await call('POST', '/v1/enrol-tokens', { cookie, 'x-csrf-token': 'x'.repeat(43) }, body)).toMatchObject({ status: 403 });
    expect(stack.server.db.prepare('SELECT count(*) FROM enrol_tokens').pluck().get()).toBe(before);
    expect(await call('POST', '/v1/enrol-tokens', { cookie, 'x-csrf-token': s.csrf }, body)).toMatchObject({ status: 200 });
    // a bearer token needs no CSRF token
    expect(await call('POST', '/v1/enrol-tokens', bearer(tokens.operator), body)).toMatchObject({ status: 200 });
  });

  it('sign-out ends the session and clears the cookie; an idle session and a disabled user are signed out', async () => {
    const s = await login('rita');
    const cookie = `rc_session=${s.session}`;
    expect(await call('POST', '/v1/session/logout', { cookie })).toMatchObject({ status: 403, json: { error: { code: ErrorCode.AuthCsrf } } });
    const out = await call('POST', '/v1/session/logout', { cookie, 'x-csrf-token': s.csrf });
    expect(out).toMatchObject({ status: 200, json: { ok: true } });
    expect(out.headers.get('set-cookie')).toMatch(/rc_session=;.*Expires=Thu, 01 Jan 1970/i);
    expect(await call('GET', '/v1/session', { cookie })).toMatchObject({ status: 401, json: { error: { code: ErrorCode.AuthUnauthenticated } } });

    const idle = await login('rita');
    stack.server.db.prepare('UPDATE sessions SET seen_ms = seen_ms - ?').run(31 * 60_000);
    expect(await call('GET', '/v1/status', { cookie: `rc_session=${idle.session}` })).toMatchObject({ status: 401 });

    const old = await login('rita');
    stack.server.db.prepare('UPDATE sessions SET created_ms = created_ms - ?').run(13 * 3600_000);
    expect(await call('GET', '/v1/status', { cookie: `rc_session=${old.session}` })).toMatchObject({ status: 401 });

    const d = await login('rita');
    expect(await call('POST', '/v1/users/rita/disable', bearer(tokens.admin))).toMatchObject({ status: 200 });
    expect(await call('GET', '/v1/status', { cookie: `rc_session=${d.session}` })).toMatchObject({ status: 401 });
    expect(await login('rita')).toMatchObject({ status: 401, json: { error: { code: ErrorCode.AuthBadCredentials } } });
  });

  it('sign-in is rate limited per user name: after 5 failures even the right password is 429 auth.rate-limited', async () => {
    for (let i = 0; i < 5; i++)
      expect(await login('sasha', 'wrong password!')).toMatchObject({ status: 401, json: { error: { code: ErrorCode.AuthBadCredentials } } });
    expect(await login('sasha')).toMatchObject({ status: 429, json: { error: { code: ErrorCode.AuthRateLimited } } });
    // another name from the same address is not locked out
    expect(await login('olga')).toMatchObject({ status: 200 });
    // and an unknown name is refused like a wrong password
    expect(await login('nobody')).toMatchObject({ status: 401, json: { error: { code: ErrorCode.AuthBadCredentials } } });
  });
});

describe('the audit log', () => {
  it('records who changed what, from where, with a summary and no secrets; filters and exports CSV', async () => {
    const rules = { schema: 1, tariff: busConfig('bus-07-a123').tariff };
    expect(await call('POST', '/v1/config', bearer(tokens.operator), { name: 'rules', rules })).toMatchObject({ status: 200 });
    const r = await fetch(url('/v1/import/cards'), {
      method: 'POST',
      headers: { ...bearer(tokens.admin), 'content-type': 'text/csv' },
      body: cardsCsv(100, 3),
    });
    expect(r.status).toBe(200);
    const made = await call('POST', '/v1/users', bearer(tokens.admin), { name: 'zara', role: 'carrier', carrier: 'C12', password: 'a long enough password' });
    expect(made).toMatchObject({ status: 200, json: { user: { name: 'zara', role: 'carrier', carrier: 'C12' } } });
    expect(await call('POST', '/v1/charging/decline', bearer(tokens.operator), { tokens: [tokenOf(1), tokenOf(2)] })).toMatchObject({ status: 200 });

    const a = await call('GET', '/v1/audit', bearer(tokens.auditor));
    expect(a.status).toBe(200);
    const rows = (a.json as { rows: { who: string; role: string; source: string; action: string; detail: Record<string, unknown>; result: string }[] }).rows;
    expect(rows).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ who: 't-operator', role: 'operator', source: '127.0.0.1', action: 'POST /v1/config', result: 'ok' }),
        expect.objectContaining({ who: 't-admin', action: 'POST /v1/import/:kind', detail: expect.objectContaining({ kind: 'cards', rows: 3, applied: 3 }) }),
        expect.objectContaining({ who: 't-admin', action: 'POST /v1/users', detail: expect.objectContaining({ name: 'zara', password: '[redacted]' }) }),
        expect.objectContaining({ action: 'POST /v1/charging/decline', detail: expect.objectContaining({ tokensCount: 2 }) }),
        expect.objectContaining({ who: 'olga', action: 'session.login', result: 'ok' }),
        expect.objectContaining({ who: 'sasha', action: 'session.login', result: ErrorCode.AuthRateLimited }),
      ]),
    );
    expect(rows.find((x) => x.action === 'POST /v1/config')!.detail).toMatchObject({ name: 'rules', version: expect.any(Number) });
    const text = JSON.stringify(rows);
    for (const secret of ['a long enough password', tokenOf(1), PASSWORD, tokens.admin]) expect(text).not.toContain(secret);
    // reads are not audited
    expect(rows.some((x) => x.action.startsWith('GET '))).toBe(false);

    const f = await call('GET', '/v1/audit?who=t-operator&action=config', bearer(tokens.admin));
    expect((f.json as { rows: unknown[] }).rows).toHaveLength(rows.filter((x) => x.who === 't-operator' && x.action.includes('config')).length);
    const csv = await call('GET', '/v1/audit?format=csv&action=users', bearer(tokens.admin));
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.text.split('\r\n')[0]).toBe('seq,time,who,role,source,action,detail,result');
    expect(csv.text).toContain('POST /v1/users');
  });

  it('refuses UPDATE and DELETE of its rows (SQLite triggers)', () => {
    const db = stack.server.db;
    const n = db.prepare('SELECT count(*) FROM audit').pluck().get() as number;
    expect(n).toBeGreaterThan(0);
    expect(() => db.prepare("UPDATE audit SET who = 'someone else'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit').run()).toThrow(/append-only/);
    expect(db.prepare('SELECT count(*) FROM audit').pluck().get()).toBe(n);
    expect(db.prepare("SELECT count(*) FROM audit WHERE who = 'someone else'").pluck().get()).toBe(0);
  });
});

describe('operations: /metrics and /healthz', () => {
  let dev: Device | null = null;
  afterAll(async () => {
    await dev?.close();
  });

  /** A Prometheus text exposition: every sample line is `name{labels} value`. */
  function samples(text: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (-?[\d.e+-]+|NaN|[+-]Inf)$/.exec(line);
      expect(m, line).not.toBeNull();
      out.set(m![1]!, Number(m![2]));
    }
    return out;
  }

  it('/metrics answers a reading role in Prometheus text, and the taps counter moves when a tap is ingested', async () => {
    expect(await call('GET', '/metrics')).toMatchObject({ status: 401 });
    expect(await call('GET', '/metrics', bearer(tokens.carrier))).toMatchObject({ status: 403 });
    const m0 = await call('GET', '/metrics', bearer(tokens.auditor));
    expect(m0.status).toBe(200);
    expect(m0.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const s0 = samples(m0.text);
    for (const name of ['rc_taps_ingested_total', 'rc_devices_online', 'rc_process_cpu_user_seconds_total', 'rc_nodejs_heap_size_used_bytes'])
      expect(s0.has(name), name).toBe(true);
    expect(s0.get('rc_list_version{scope="transit"}')).toBe(stack.server.publisher.version('transit'));
    expect([...s0.keys()].some((k) => k.startsWith('rc_import_duration_seconds_count{kind="cards"}'))).toBe(true);

    const cfg = busConfig('bus-07-metrics');
    dev = openDevice(stack, cfg.device.id);
    const want = stack.server.publisher.version('transit');
    await waitFor(() => dev!.store.listVersion('transit') === want, { timeoutMs: 15_000, what: 'transit list on the device' });
    tap(dev, cfg, tokenOf(100), Date.now());
    await waitFor(() => dev!.store.ackedSeq() === dev!.store.lastSeq(), { timeoutMs: 15_000, what: 'journal acknowledged' });
    const s1 = samples((await call('GET', '/metrics', bearer(tokens.operator))).text);
    expect(s1.get('rc_taps_ingested_total')).toBe((s0.get('rc_taps_ingested_total') ?? 0) + 1);
    await waitFor(async () => samples((await call('GET', '/metrics', bearer(tokens.admin))).text).get('rc_devices_online') === 1, {
      timeoutMs: 15_000,
      what: 'the device counted online',
    });
  });

  it('/healthz is public: 200 ok; /v1/health stays public', async () => {
    expect(await call('GET', '/healthz')).toMatchObject({ status: 200, text: 'ok\n' });
    expect(await call('GET', '/v1/health')).toMatchObject({ status: 200, json: { ok: true } });
    expect(await call('GET', '/v1/public-key')).toMatchObject({ status: 200 });
  });

  it('operatorFetch calls as the admin of the data dir', async () => {
    expect((await operatorFetch({ httpUrl: stack.server.httpUrl, dataDir: stack.dataDir }, '/v1/users')).status).toBe(200);
    expect(adminToken(stack)).toMatch(/^rcat_/);
  });
});
