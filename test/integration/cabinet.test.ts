/**
 * Issue 15 items 1 and 2 (server side): a cardholder signs in through ESIA (the stand-in in test/support/esia/), sees
 * only their own data and their children's, and connects or replaces their card; every failure of the sign-in is a coded
 * redirect, never a 500; no card number reaches the registry, the logs or any answer.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { parseCabinetConfig } from '../../sync-server/cabinet/provider.js';
import { esiaProvider } from '../../sync-server/cabinet/esia.js';
import { keyFileSigner } from '../../sync-server/cabinet/signer.js';
import { AddressLimit, ConnectLock } from '../../sync-server/cabinet/lock.js';
import { importIdentities } from '../../sync-server/cabinet/service.js';
import { snilsKey } from '../../sync-server/cabinet/service.js';
import { startEsiaStandIn, type EsiaStandIn } from '../support/esia/stand-in.js';
import { operatorFetch } from '../support/operator-api.js';
import { MIR_PAN, MIR_PAN_2, MIR_PAN_BAD_LUHN } from '../support/pans.js';
import { startStack, type Stack } from '../support/sync-harness.js';
import { registryContents } from '../support/test-db.js';
import { freePort } from '../support/rig/broker.js';

const PAN_3 = '2200700000000017';
const ALL_PANS = [MIR_PAN, MIR_PAN_2, MIR_PAN_BAD_LUHN, PAN_3];

interface Session {
  cookie: string;
  csrf: string;
}

describe("the cardholder's cabinet over ESIA (stand-in)", () => {
  let esia: EsiaStandIn;
  let stack: Stack;
  let pub: string;
  let clientKeyPem: string;
  const offset = { ms: 0 };
  /** Every answer body the tests saw, searched for card numbers at the end. */
  const seen: string[] = [];

  beforeAll(async () => {
    const port = await freePort();
    const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    clientKeyPem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const redirectUri = `http://127.0.0.1:${port}/v1/cabinet/callback`;
    esia = await startEsiaStandIn({ clientId: 'RCKALM', clientPublicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(), redirectUri });
    const config = parseCabinetConfig({
      provider: {
        kind: 'esia',
        baseUrl: esia.url,
        clientId: 'RCKALM',
        redirectUri,
        signer: { kind: 'key', key: clientKeyPem },
        verify: { publicKey: esia.publicKeyPem },
      },
    });
    stack = await startStack('embedded', {
      publicListen: { host: '127.0.0.1', port },
      cabinet: { config, clock: () => Date.now() + offset.ms },
      usageIntervalMs: 0,
    });
    pub = stack.server.publicUrl!;
    // the registry knows the first ESIA person by SNILS (rc-sync-server identities import) and gives them a benefit
    importIdentities(stack.server.db, snilsKey(stack.dataDir), [{ personId: 'p-ochirova', snils: '11223344595' }]);
    stack.server.db
      .prepare("INSERT INTO benefits(person_id, category, valid_from, valid_to) VALUES ('p-ochirova', 'pensioner', '2024-01-01', '2099-12-31')")
      .run();
  });
  afterAll(async () => {
    await stack?.close();
    await esia?.close();
  });

  const text = async (r: Response) => {
    const t = await r.text();
    seen.push(t, r.headers.get('location') ?? '');
    return t;
  };

  /** Login → the stand-in's page → pick the person → the callback URL (not followed). */
  async function toCallback(oid: string): Promise<string> {
    const login = await fetch(`${pub}/v1/cabinet/login?next=/cabinet/`, { redirect: 'manual' });
    expect(login.status).toBe(302);
    const page = await fetch(login.headers.get('location')!);
    expect(page.status).toBe(200);
    const request = /name="request" value="([0-9a-f]+)"/.exec(await page.text())![1]!;
    const back = await fetch(`${esia.url}/aas/oauth2/v2/ac/login`, {
      method: 'POST',
      body: new URLSearchParams({ request, oid, action: 'allow' }),
      redirect: 'manual',
    });
    expect(back.status).toBe(302);
    return back.headers.get('location')!;
  }

  async function callback(url: string): Promise<Response> {
    const r = await fetch(url, { redirect: 'manual' });
    await text(r);
    return r;
  }

  async function signIn(oid: string): Promise<Session> {
    const r = await callback(await toCallback(oid));
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('/cabinet/');
    const set = r.headers.get('set-cookie') ?? '';
    expect(set).toMatch(/^rc_cabinet=[\w-]{43};/);
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/Secure/);
    expect(set).toMatch(/SameSite=Lax/);
    const cookie = set.split(';')[0]!;
    const me = (await get({ cookie, csrf: '' }, '/v1/cabinet/me')) as { csrf: string };
    return { cookie, csrf: me.csrf };
  }

  async function call(s: Session, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const r = await fetch(`${pub}${path}`, {
      method,
      headers: { cookie: s.cookie, ...(s.csrf ? { 'x-csrf-token': s.csrf } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: r.status, json: JSON.parse(await text(r)) as Record<string, unknown> };
  }
  const get = async (s: Session, path: string) => (await call(s, 'GET', path)).json;
  const code = (j: Record<string, unknown>) => (j['error'] as { code: string } | undefined)?.code;
  const errorOf = (r: Response) => new URL(r.headers.get('location')!, pub).searchParams.get('error');

  it('signs in through ESIA: the person found by SNILS sees their name, benefits and no card yet', async () => {
    const s = await signIn('1000001');
    const me = await get(s, '/v1/cabinet/me');
    expect(me).toMatchObject({ holder: { name: 'Очирова Байрта Сергеевна', esia: true }, card: null, children: [] });
    expect(me['benefits']).toEqual([expect.objectContaining({ category: 'pensioner', validFrom: '2024-01-01' })]);
    // ESIA's tokens are not kept: the session row holds the person and the name only
    const cols = stack.server.db.prepare('SELECT * FROM cabinet_sessions').all() as Record<string, unknown>[];
    expect(JSON.stringify(cols)).not.toMatch(/eyJ/);
    expect(stack.server.db.prepare("SELECT person_id FROM holder_links WHERE subject = 'esia:1000001'").pluck().get()).toBe('p-ochirova');
  });

  it('without a session the cabinet answers 401 auth.unauthenticated', async () => {
    const r = await call({ cookie: 'rc_cabinet=nothing', csrf: '' }, 'GET', '/v1/cabinet/me');
    expect(r.status).toBe(401);
    expect(code(r.json)).toBe(ErrorCode.AuthUnauthenticated);
  });

  it('a forged or used state is refused with cabinet.bad-state', async () => {
    const forged = await callback(`${pub}/v1/cabinet/callback?code=abc&state=forged`);
    expect(forged.status).toBe(302);
    expect(errorOf(forged)).toBe(ErrorCode.CabinetBadState);
    expect(forged.headers.get('set-cookie')).toBeNull();
    const url = await toCallback('1000001');
    expect((await callback(url)).headers.get('location')).toBe('/cabinet/');
    expect(errorOf(await callback(url))).toBe(ErrorCode.CabinetBadState);
  });

  it('a replayed code (under a fresh state) is refused by ESIA: cabinet.code-rejected', async () => {
    const first = new URL(await toCallback('1000001'));
    expect((await callback(first.toString())).status).toBe(302);
    const second = new URL(await toCallback('1000001'));
    second.searchParams.set('code', first.searchParams.get('code')!);
    expect(errorOf(await callback(second.toString()))).toBe(ErrorCode.CabinetCodeRejected);
  });

  it('a forged id_token is refused with cabinet.bad-id-token', async () => {
    esia.mode.forgeIdToken = true;
    try {
      expect(errorOf(await callback(await toCallback('1000001')))).toBe(ErrorCode.CabinetBadIdToken);
    } finally {
      esia.mode.forgeIdToken = false;
    }
  });

  it('ESIA down is cabinet.provider-down, and a person who declines is cabinet.login-declined', async () => {
    esia.mode.down = true;
    try {
      expect(errorOf(await callback(await toCallback('1000001')))).toBe(ErrorCode.CabinetProviderDown);
    } finally {
      esia.mode.down = false;
    }
    const login = await fetch(`${pub}/v1/cabinet/login`, { redirect: 'manual' });
    const request = /name="request" value="([0-9a-f]+)"/.exec(await (await fetch(login.headers.get('location')!)).text())![1]!;
    const back = await fetch(`${esia.url}/aas/oauth2/v2/ac/login`, {
      method: 'POST',
      body: new URLSearchParams({ request, action: 'deny' }),
      redirect: 'manual',
    });
    expect(errorOf(await callback(back.headers.get('location')!))).toBe(ErrorCode.CabinetLoginDeclined);
  });

  it("a client_secret signed with another key is refused: by ESIA's authorization page and, at the token step, as cabinet.client-rejected", async () => {
    const other = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const c = parseCabinetConfig({
      provider: {
        kind: 'esia',
        baseUrl: esia.url,
        clientId: 'RCKALM',
        redirectUri: esia.redirectUri,
        signer: { kind: 'key', key: other },
        verify: { publicKey: esia.publicKeyPem },
      },
    }).provider;
    if (c.kind !== 'esia') throw new Error('esia');
    const wrong = await esiaProvider(c, keyFileSigner(other));
    const page = await fetch(await wrong.authorizationUrl({ state: 's', nonce: 'n', verifier: 'v' }));
    expect(page.status).toBe(400);
    expect(await page.json()).toMatchObject({ error: 'invalid_client' });
    const cb = new URL(await toCallback('1000001'));
    await expect(wrong.identify({ code: cb.searchParams.get('code')! }, { state: 's', nonce: 'n', verifier: 'v' })).rejects.toMatchObject({
      code: ErrorCode.CabinetClientRejected,
    });
  });

  it('connects a card (CSRF required), replaces it (the old token leaves the next list version), refuses a card taken by another person', async () => {
    const s = await signIn('1000001');
    const noCsrf = await call({ cookie: s.cookie, csrf: '' }, 'POST', '/v1/cabinet/card', { pan: MIR_PAN, expiry: '12/30' });
    expect(noCsrf.status).toBe(403);
    expect(code(noCsrf.json)).toBe(ErrorCode.AuthCsrf);

    const v0 = stack.server.publisher.version('transit');
    const a = await call(s, 'POST', '/v1/cabinet/card', { pan: MIR_PAN, expiry: '12/30' });
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ card: { masked: '220012******9019', expiry: '2030-12', status: 'active' }, result: { status: 'connected' } });
    const v1 = (a.json['result'] as { effectiveListVersion: number }).effectiveListVersion;
    expect(v1).toBeGreaterThan(v0);
    const tokenA = stack.server.db.prepare("SELECT token FROM cards WHERE person_id = 'p-ochirova'").pluck().get() as string;
    expect(stack.server.db.prepare("SELECT 1 FROM entries WHERE scope = 'transit' AND token = ?").get(tokenA)).toBeDefined();

    const same = await call(s, 'POST', '/v1/cabinet/card', { pan: MIR_PAN, expiry: '1230' });
    expect(same.json).toMatchObject({ result: { status: 'unchanged' } });

    const b = await call(s, 'POST', '/v1/cabinet/card', { pan: MIR_PAN_2, expiry: '11/2031' });
    expect(b.json).toMatchObject({
      card: { masked: '220012******9027', expiry: '2031-11' },
      result: { status: 'replaced', previousMasked: '220012******9019' },
    });
    const v2 = (b.json['result'] as { effectiveListVersion: number }).effectiveListVersion;
    expect(v2).toBeGreaterThan(v1);
    expect(stack.server.db.prepare("SELECT 1 FROM entries WHERE scope = 'transit' AND token = ?").get(tokenA)).toBeUndefined();
    expect(stack.server.db.prepare("SELECT count(*) FROM cards WHERE person_id = 'p-ochirova'").pluck().get()).toBe(1);
    // published: no recomputation left pending for a restart
    expect(stack.server.db.prepare("SELECT value FROM meta WHERE key = 'import.recompute'").get()).toBeUndefined();
    // the published delta to v2 removes the old token
    const delta = stack.server.db.prepare("SELECT payload FROM deltas WHERE scope = 'transit' AND to_v = ?").pluck().get(v2) as Buffer | undefined;
    expect(delta).toBeDefined();

    const other = await signIn('1000002');
    const taken = await call(other, 'POST', '/v1/cabinet/card', { pan: MIR_PAN_2, expiry: '11/31' });
    expect(taken.status).toBe(409);
    expect(code(taken.json)).toBe(ErrorCode.CabinetCardTaken);
    expect(JSON.stringify(taken.json)).not.toContain(MIR_PAN_2);
    const me = await get(other, '/v1/cabinet/me');
    expect(me['card']).toBeNull();
    // a holder with no registry person got a new one, without benefits
    expect(me['benefits']).toEqual([]);
  });

  it('a holder sees their own child, and another holder is refused that child (auth.forbidden)', async () => {
    const parent = await signIn('1000002');
    const parentId = stack.server.db.prepare("SELECT person_id FROM holder_links WHERE subject = 'esia:1000002'").pluck().get() as string;
    stack.server.db
      .prepare(
        "INSERT INTO guardians(person_id, guardian_id, child_name, channel, address, secret, consent, events, quiet_from, quiet_to, updated_at) VALUES ('c-1', ?, 'Бадмаев Арслан', 'email', 'x@example.org', NULL, 1, '[]', NULL, NULL, '2026-01-01')",
      )
      .run(parentId);
    expect(await get(parent, '/v1/cabinet/me')).toMatchObject({ children: [{ personId: 'c-1', name: 'Бадмаев Арслан' }] });
    const days = await call(parent, 'GET', '/v1/cabinet/children/c-1/days');
    expect(days.status).toBe(200);
    expect(days.json).toMatchObject({ child: { personId: 'c-1' }, days: [] });
    const stranger = await signIn('1000001');
    const refused = await call(stranger, 'GET', '/v1/cabinet/children/c-1/days');
    expect(refused.status).toBe(403);
    expect(code(refused.json)).toBe(ErrorCode.AuthForbidden);
    expect((await call(stranger, 'GET', '/v1/cabinet/trips')).json).toEqual({ trips: [] });
    expect((await call(stranger, 'GET', '/v1/cabinet/debts')).json).toEqual({ debts: [] });
    expect((await call(stranger, 'GET', '/v1/cabinet/trips?from=2020-01-01')).status).toBe(400);
  });

  it("a holder who replaced their card sees the old card's trips up to the replacement, each trip with its card's masked number; a child's days too", async () => {
    const db = stack.server.db;
    const s = await signIn('1000001');
    // the previous test replaced p-ochirova's card 9019 by 9027: the registry's trigger kept the old token and its masked number
    const past = db.prepare("SELECT token, masked, until_ms FROM holder_card_history WHERE person_id = 'p-ochirova'").all() as {
      token: string;
      masked: string;
      until_ms: number;
    }[];
    expect(past.map((p) => p.masked)).toEqual(['220012******9019']);
    const [old] = past;
    const current = db.prepare("SELECT token FROM cards WHERE person_id = 'p-ochirova'").pluck().get() as string;
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const tap = db.prepare(
      "INSERT INTO journal(device, seq, time, token, kind, result, reason, fare, benefit, lists, received_at, route, vehicle, eff_ms, service_day) VALUES ('bus-hist', ?, ?, ?, ?, 'allow', ?, ?, ?, '{}', ?, '7', 'A001AA08', ?, ?)",
    );
    const put = (seq: number, token: string, ms: number, kind = 'bus', reason = 'benefit') =>
      tap.run(
        seq,
        new Date(ms).toISOString(),
        token,
        kind,
        reason,
        reason === 'benefit' ? 0 : 3500,
        reason === 'benefit' ? 'pensioner' : null,
        new Date().toISOString(),
        ms,
        day(ms),
      );
    put(1, old!.token, old!.until_ms - 2 * 86_400_000); // the old card, while it was hers
    put(2, old!.token, old!.until_ms + 1000, 'bus', 'full-fare'); // the old card after she replaced it: not hers any more
    put(3, current, Date.now() - 3600_000); // the new card
    const trips = (await get(s, '/v1/cabinet/trips')) as { trips: { time: string; card: string; fareKopecks: number }[] };
    expect(trips.trips.map((t) => [t.card, t.fareKopecks])).toEqual([
      ['220012******9019', 0],
      ['220012******9027', 0],
    ]);
    // a key rotation's cards re-import gives the same card a token under the next key version: still the one card 9027
    db.prepare("UPDATE cards SET token = ?, key_version = key_version + 1 WHERE person_id = 'p-ochirova'").run('c'.repeat(32));
    put(6, 'c'.repeat(32), Date.now() - 60_000);
    const rotated = (await get(s, '/v1/cabinet/trips')) as { trips: { card: string }[] };
    expect(rotated.trips.map((t) => t.card)).toEqual(['220012******9019', '220012******9027', '220012******9027']);
    expect(((await get(s, '/v1/cabinet/me')) as { card: { masked: string } }).card.masked).toBe('220012******9027');

    // debts: a declined charge of the old card while it was hers stays hers, one after it left her is not; the new card's
    // (made under the key version before the rotation) too; a paid charge is no debt
    const charge = db.prepare(
      "INSERT INTO charges(token, service_day, amount, taps, status, reason, created_at, updated_at) VALUES (?, ?, ?, 1, ?, NULL, '2026-01-01', '2026-01-01')",
    );
    charge.run(old!.token, day(old!.until_ms - 2 * 86_400_000), 3500, 'declined');
    charge.run(old!.token, day(old!.until_ms + 2 * 86_400_000), 7000, 'declined');
    charge.run(current, day(Date.now()), 4200, 'declined');
    charge.run(current, day(Date.now() - 86_400_000), 9900, 'paid');
    const debts = (await get(s, '/v1/cabinet/debts')) as { debts: { serviceDay: string; amountKopecks: number; card: string }[] };
    expect(debts.debts.map((d) => [d.serviceDay, d.amountKopecks, d.card])).toEqual([
      [day(old!.until_ms - 2 * 86_400_000), 3500, '220012******9019'],
      [day(Date.now()), 4200, '220012******9027'],
    ]);

    // a card that moves from one person to another (a bank file): the later holder never sees the earlier one's trips
    const moved = 'd'.repeat(32);
    db.prepare("INSERT INTO cards(person_id, token, key_version, expiry, updated_at) VALUES ('p-earlier', ?, 1, '2030-12', ?)").run(
      moved,
      new Date().toISOString(),
    );
    put(7, moved, Date.now() - 2 * 3600_000); // p-earlier's trip
    db.prepare("DELETE FROM cards WHERE person_id = 'p-earlier'").run();
    const later = db.prepare("SELECT person_id FROM holder_links WHERE subject = 'esia:1000002'").pluck().get() as string;
    db.prepare("INSERT INTO cards(person_id, token, key_version, expiry, updated_at) VALUES (?, ?, 1, '2030-12', ?)").run(
      later,
      moved,
      new Date().toISOString(),
    );
    const movedAt = db.prepare("SELECT until_ms FROM holder_card_history WHERE person_id = 'p-earlier'").pluck().get() as number;
    put(8, moved, movedAt + 1000); // the later holder's trip
    const theirs = (await get(await signIn('1000002'), '/v1/cabinet/trips')) as { trips: { time: string; card: string }[] };
    expect(theirs.trips).toEqual([expect.objectContaining({ time: new Date(movedAt + 1000).toISOString(), card: 'token dddddddd' })]);

    // a child's card replaced by a bank file (no masked number): the old card's school days stay on the guardian's page
    db.prepare("INSERT INTO cards(person_id, token, key_version, expiry, updated_at) VALUES ('c-hist', ?, 1, '2030-12', ?)").run(
      'a'.repeat(32),
      new Date().toISOString(),
    );
    db.prepare("UPDATE cards SET token = ? WHERE person_id = 'c-hist'").run('b'.repeat(32));
    db.prepare(
      "INSERT INTO guardians(person_id, guardian_id, child_name, channel, address, secret, consent, events, quiet_from, quiet_to, updated_at) VALUES ('c-hist', 'p-ochirova', 'Очиров Баатр', 'email', 'y@example.org', NULL, 1, '[]', NULL, NULL, '2026-01-01')",
    ).run();
    const until = db.prepare("SELECT until_ms FROM holder_card_history WHERE person_id = 'c-hist'").pluck().get() as number;
    // two days before: 'a day before' and 'ten minutes ago' were one day from 00:00 to 00:10 UTC (failed so at 00:06)
    put(4, 'a'.repeat(32), until - 2 * 86_400_000, 'turnstile', 'ok');
    put(5, 'b'.repeat(32), Date.now() - 600_000, 'turnstile', 'ok');
    const days = (await get(s, '/v1/cabinet/children/c-hist/days')) as { days: { day: string; passages: unknown[] }[] };
    expect(days.days.map((d) => [d.day, d.passages.length])).toEqual([
      [day(until - 2 * 86_400_000), 1],
      [day(Date.now() - 600_000), 1],
    ]);
  });

  it('staff connect a card for a person without ESIA (audited without the number)', async () => {
    const r = await operatorFetch({ httpUrl: stack.server.httpUrl, dataDir: stack.dataDir }, '/v1/console/holders/p-staff/card', {
      method: 'POST',
      body: JSON.stringify({ pan: PAN_3, expiry: '05/29' }),
    });
    const j = JSON.parse(await text(r)) as Record<string, unknown>;
    expect(r.status).toBe(200);
    expect(j).toMatchObject({ personId: 'p-staff', masked: '220070******0017', expiry: '2029-05', result: { status: 'connected' } });
    const audit = stack.server.db.prepare("SELECT detail FROM audit WHERE action LIKE '%holders%' OR action = 'card.connect'").pluck().all() as string[];
    expect(audit.length).toBeGreaterThanOrEqual(2);
  });

  it('five wrong card numbers lock connecting for an hour (per person and per address), then it works again', async () => {
    const s = await signIn('1000003');
    for (let i = 0; i < 4; i++) {
      const r = await call(s, 'POST', '/v1/cabinet/card', { pan: MIR_PAN_BAD_LUHN, expiry: '12/30' });
      expect(r.status).toBe(400);
      expect(code(r.json)).toBe(ErrorCode.CardBadPan);
    }
    expect(code((await call(s, 'POST', '/v1/cabinet/card', { pan: '2200123456789027', expiry: '13/30' })).json)).toBe(ErrorCode.CardBadExpiry);
    const locked = await call(s, 'POST', '/v1/cabinet/card', { pan: '2200123456789035', expiry: '12/30' });
    expect(locked.status).toBe(429);
    expect(code(locked.json)).toBe(ErrorCode.CabinetConnectLocked);
    offset.ms += 59 * 60_000;
    const s2 = await signIn('1000003');
    expect((await call(s2, 'POST', '/v1/cabinet/card', { pan: '2200123456789035', expiry: '12/30' })).status).toBe(429);
    offset.ms += 2 * 60_000;
    const s3 = await signIn('1000003');
    const ok = await call(s3, 'POST', '/v1/cabinet/card', { pan: '2200123456789035', expiry: '12/30' });
    expect(ok.status).toBe(200);
  });

  it('the connect lock is kept in the registry: a restarted server still refuses the locked holder, until the hour is over', async () => {
    const s = await signIn('1000003');
    for (let i = 0; i < 5; i++)
      expect(code((await call(s, 'POST', '/v1/cabinet/card', { pan: MIR_PAN_BAD_LUHN, expiry: '12/30' })).json)).toBe(ErrorCode.CardBadPan);
    expect(code((await call(s, 'POST', '/v1/cabinet/card', { pan: '2200123456789035', expiry: '12/30' })).json)).toBe(ErrorCode.CabinetConnectLocked);
    const personId = stack.server.db.prepare("SELECT person_id FROM holder_links WHERE subject = 'esia:1000003'").pluck().get() as string;
    expect(stack.server.db.prepare("SELECT key FROM cabinet_locks WHERE kind = 'connect' ORDER BY key").pluck().all()).toEqual([
      'a:127.0.0.1',
      `p:${personId}`,
    ]);

    // a card history row older than anything the cabinet shows goes at start
    stack.server.db.prepare("INSERT INTO holder_card_history(person_id, token, masked, until_ms) VALUES ('p-gone', ?, NULL, 0)").run('f'.repeat(32));
    await stack.restartServer();
    expect(stack.server.publicUrl).toBe(pub);
    expect(stack.server.db.prepare("SELECT count(*) FROM holder_card_history WHERE person_id = 'p-gone'").pluck().get()).toBe(0);
    const again = await signIn('1000003');
    const locked = await call(again, 'POST', '/v1/cabinet/card', { pan: '2200123456789035', expiry: '12/30' });
    expect(locked.status).toBe(429);
    expect(code(locked.json)).toBe(ErrorCode.CabinetConnectLocked);
    offset.ms += 59 * 60_000;
    expect((await call(await signIn('1000003'), 'POST', '/v1/cabinet/card', { pan: '2200123456789035', expiry: '12/30' })).status).toBe(429);
    offset.ms += 2 * 60_000;
    const ok = await call(await signIn('1000003'), 'POST', '/v1/cabinet/card', { pan: '2200123456789035', expiry: '12/30' });
    expect(ok.status).toBe(200);
    // the hour's rows are gone once a later failure is written
    await call(await signIn('1000003'), 'POST', '/v1/cabinet/card', { pan: MIR_PAN_BAD_LUHN, expiry: '12/30' });
    expect(stack.server.db.prepare("SELECT count(*) FROM cabinet_locks WHERE kind = 'connect'").pluck().get()).toBe(0);
    expect(stack.server.db.prepare("SELECT count(*) FROM cabinet_attempts WHERE kind = 'connect'").pluck().get()).toBe(2);
  });

  it('two server instances on one registry share the limits: what one counts, the other enforces', () => {
    const now = () => Date.now() + offset.ms;
    const [a, b] = [new ConnectLock(now, undefined, stack.server.db), new ConnectLock(now, undefined, stack.server.db)];
    for (let i = 0; i < 5; i++) (i % 2 ? a : b).failed('p-two', '10.9.9.9');
    expect(b.lockedUntil('p-two', '10.9.9.8')).toBe(a.lockedUntil('p-two', '10.9.9.8'));
    expect(a.lockedUntil('p-two', '10.9.9.8')).toBeGreaterThan(now());
    const opts = { kind: 'login-start', windowMs: 15 * 60_000, perAddress: 3 };
    const [x, y] = [new AddressLimit(stack.server.db, opts), new AddressLimit(stack.server.db, opts)];
    x.record('10.9.9.7', now());
    y.record('10.9.9.7', now());
    expect(y.blocked('10.9.9.7', now())).toBe(false);
    x.record('10.9.9.7', now());
    expect(y.blocked('10.9.9.7', now())).toBe(true);
    expect(x.blocked('10.9.9.6', now())).toBe(false);
  });

  it('twenty failed sign-ins from one address are cabinet.login-limited, also after a restart, for 15 minutes', async () => {
    offset.ms += 60 * 60_000; // the earlier tests' failed sign-ins are out of the window
    for (let i = 0; i < 20; i++) expect(errorOf(await callback(`${pub}/v1/cabinet/callback?code=abc&state=forged-${i}`))).toBe(ErrorCode.CabinetBadState);
    expect(errorOf(await callback(`${pub}/v1/cabinet/callback?code=abc&state=forged`))).toBe(ErrorCode.CabinetLoginLimited);
    await stack.restartServer();
    const login = await fetch(`${pub}/v1/cabinet/login?next=/cabinet/`, { redirect: 'manual' });
    expect(login.status).toBe(429);
    expect(code(JSON.parse(await text(login)) as Record<string, unknown>)).toBe(ErrorCode.CabinetLoginLimited);
    offset.ms += 16 * 60_000;
    await signIn('1000003');
  });

  it('signs out: the session is gone', async () => {
    const s = await signIn('1000001');
    expect((await call(s, 'POST', '/v1/cabinet/logout')).status).toBe(200);
    expect((await call(s, 'GET', '/v1/cabinet/me')).status).toBe(401);
  });

  it('no card number in the registry file, the logs or any answer', async () => {
    const blobs = [registryContents(stack.server.db, stack.dataDir), stack.logs.text(), seen.join('\n')];
    for (const pan of [...ALL_PANS, '2200123456789035']) for (const b of blobs) expect(b.includes(pan), `PAN ${pan.slice(0, 6)}… found`).toBe(false);
    expect(stack.logs.text()).toMatch(/card connected to a person/);
  });
});
