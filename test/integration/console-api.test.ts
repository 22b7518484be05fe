import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DeviceDetail,
  FleetAnswer,
  JournalSearchAnswer,
  ListsAnswer,
  StopAddAnswer,
  StopListAnswer,
  EnrolQrAnswer,
  ConfigDoc,
} from '../../protocol/console-api.js';
import { deriveToken, DEV_TOKEN_KEY } from '../../protocol/token.js';
import { operatorFetch } from '../support/operator-api.js';
import { MIR_PAN_2, MIR_PAN_BAD_LUHN, syntheticPan } from '../support/pans.js';
import { cardsCsv, tokenOf } from '../support/registry-csv.js';
import { busConfig, importText, openDevice, startStack, tap, type Device, type Stack } from '../support/sync-harness.js';
import { registryContents } from '../support/test-db.js';
import { waitFor } from '../support/wait.js';

/**
 * The console's JSON routes on the real stack (embedded broker, one bus validator): fleet with alarms, device
 * detail with status history and journal, lists, rules validate/get, the stop-list by card number, journal search.
 */
const LOST_PAN = MIR_PAN_2;

describe('console JSON routes', () => {
  let stack: Stack;
  let dev: Device | null = null;
  const call = async <T>(path: string, schema: { parse(v: unknown): T }, init: RequestInit = {}): Promise<T> => {
    const res = await operatorFetch({ httpUrl: stack.server.httpUrl, dataDir: stack.dataDir }, path, init);
    const body = (await res.json()) as unknown;
    if (res.status !== 200) throw Object.assign(new Error(`${path}: ${res.status} ${JSON.stringify(body)}`), { status: res.status, body });
    return schema.parse(body);
  };
  const refused = async (path: string, init: RequestInit = {}) => {
    const res = await operatorFetch({ httpUrl: stack.server.httpUrl, dataDir: stack.dataDir }, path, init);
    return { status: res.status, body: (await res.json()) as { error: { code: string; message: string; context?: Record<string, unknown> } } };
  };
  const post = (body: unknown): RequestInit => ({ method: 'POST', body: JSON.stringify(body) });
  const any = { parse: (v: unknown) => v };
  const postJson = (path: string, body: unknown) => call(path, any, post(body));

  beforeAll(async () => {
    stack = await startStack('embedded', { consoleDir: null }); // no bundle: the API runs, /console/ says so
    const cfg = busConfig('bus-07-c1');
    await stack.server.api.setConfig('rules', { schema: 1, tariff: cfg.tariff });
    await importText(stack, 'cards', cardsCsv(0, 5));
    dev = openDevice(stack, 'bus-07-c1');
    await waitFor(() => dev!.store.listVersion('transit') === stack.server.publisher.version('transit'), { timeoutMs: 15_000, what: 'transit list' });
    tap(dev, cfg, tokenOf(1), Date.parse('2026-11-10T09:00:00+03:00'));
    tap(dev, cfg, deriveToken(Buffer.from(LOST_PAN), { expiry: '2030-04' }, DEV_TOKEN_KEY), Date.parse('2026-11-10T10:00:00+03:00'));
    const last = dev.store.lastSeq();
    await waitFor(() => dev!.store.ackedSeq() === last, { timeoutMs: 15_000, what: 'journal acknowledged' });
  }, 60_000);
  afterAll(async () => {
    await dev?.close();
    await stack?.close();
  });

  it('fleet: the connected validator is online with its lists; device detail has its status history and journal', async () => {
    await waitFor(async () => (await call('/v1/console/fleet', FleetAnswer)).devices.some((d) => d.id === 'bus-07-c1' && d.online), {
      timeoutMs: 10_000,
      what: 'device online on the fleet',
    });
    const f = await call('/v1/console/fleet', FleetAnswer);
    const d = f.devices.find((x) => x.id === 'bus-07-c1')!;
    expect(d.alarms).toEqual([]);
    expect(d.lists.transit).toEqual({ device: f.current.transit, current: f.current.transit });
    // a threshold of one minute and a silent device: a status from long ago
    stack.server.db.prepare("UPDATE devices SET last_seen = '2026-01-01T00:00:00.000Z' WHERE id = 'bus-07-c1'").run();
    expect((await call('/v1/console/fleet?silentMinutes=1', FleetAnswer)).devices.find((x) => x.id === 'bus-07-c1')!.alarms).toContain('silent');
    const detail = await call('/v1/console/devices/bus-07-c1', DeviceDetail);
    expect(detail.history.length).toBeGreaterThan(0);
    expect(detail.journal.map((j) => j.seq)).toEqual([2, 1]); // newest first
    expect((await refused('/v1/console/devices/bus-nope')).status).toBe(404);
  });

  it('the list-old alarm: a device holds an older version of a list published longer ago than the policy', async () => {
    const transit = stack.server.publisher.version('transit');
    stack.server.db
      .prepare(
        "INSERT INTO devices(id, online, last_seen, lists, backlog) VALUES ('bus-98', 1, ?, ?, 0) ON CONFLICT (id) DO UPDATE SET online = excluded.online, last_seen = excluded.last_seen, lists = excluded.lists, backlog = excluded.backlog",
      )
      .run(new Date().toISOString(), JSON.stringify({ transit: transit - 1 }));
    const fresh = await call('/v1/console/fleet', FleetAnswer);
    expect(fresh.devices.find((x) => x.id === 'bus-98')!.alarms).toEqual([]); // just published: within the policy
    stack.server.db.prepare("UPDATE scopes SET updated_at = '2026-01-01T00:00:00.000Z' WHERE scope = 'transit'").run();
    const old = await call('/v1/console/fleet?listMaxAgeMinutes=30', FleetAnswer);
    expect(old.devices.find((x) => x.id === 'bus-98')!.alarms).toEqual(['list-old']);
    expect(old.policy).toEqual({ silentMinutes: 60, listMaxAgeMinutes: 30 });
  });

  it('the backlog-growing alarm: three status reports each with a larger backlog', async () => {
    const { recordStatus } = await import('../../sync-server/console/store.js');
    for (const [i, backlog] of [5, 9, 20].entries())
      recordStatus(stack.server.db, { device: 'bus-99', online: true, at: new Date().toISOString(), lists: {}, backlog }, new Date(Date.now() + i));
    stack.server.db
      .prepare(
        "INSERT INTO devices(id, online, last_seen, lists, backlog) VALUES ('bus-99', 1, ?, '{}', 20) ON CONFLICT (id) DO UPDATE SET online = excluded.online, last_seen = excluded.last_seen, lists = excluded.lists, backlog = excluded.backlog",
      )
      .run(new Date().toISOString());
    const f = await call('/v1/console/fleet', FleetAnswer);
    expect(f.devices.find((x) => x.id === 'bus-99')!.alarms).toEqual(['backlog-growing']);
  });

  it('lists and rules: scopes with versions; the current rules; validate refuses a bad document and changes nothing', async () => {
    const l = await call('/v1/console/lists', ListsAnswer);
    expect(l.scopes.map((s) => s.scope)).toContain('transit');
    expect(l.configs.find((c) => c.name === 'rules')).toBeDefined();
    const cur = await call('/v1/config/rules', ConfigDoc);
    expect(cur.version).toBeGreaterThan(0);
    expect(await postJson('/v1/config/validate', { name: 'rules', rules: cur.rules })).toEqual({ ok: true, name: 'rules' });
    const bad = await refused('/v1/config/validate', post({ name: 'rules', rules: { schema: 1, tariff: { nope: true } } }));
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('config.invalid');
    expect((bad.body.error.context!.issues as string[]).length).toBeGreaterThan(0);
    expect((await call('/v1/config/rules', ConfigDoc)).version).toBe(cur.version);
    expect((await refused('/v1/config/nothing')).status).toBe(404);
  });

  it('stop-list by card number: published, answered masked; the PAN is nowhere in the registry or the log; journal search by card; unblock', async () => {
    const before = stack.server.publisher.version('stoplist');
    const added = await postJson('/v1/stoplist', { pan: LOST_PAN.replace(/(\d{4})/g, '$1 ').trim(), expiry: '04/30', reason: 'lost' });
    const a = StopAddAnswer.parse(added);
    expect(a.masked).toBe(`${LOST_PAN.slice(0, 6)}******${LOST_PAN.slice(-4)}`);
    expect(a.version).toBe(before + 1);
    expect(JSON.stringify(added)).not.toContain(LOST_PAN);
    await waitFor(() => dev!.store.listVersion('stoplist') === a.version, { timeoutMs: 15_000, what: 'stop-list on the device' });
    const list = await call('/v1/stoplist', StopListAnswer);
    const e = list.entries.find((x) => x.tokenPrefix === a.tokenPrefix)!;
    expect(e.masked).toBe(a.masked);
    const found = await postJson('/v1/journal/search', { pan: LOST_PAN, expiry: '04/30' });
    const s = JournalSearchAnswer.parse(found);
    expect(s.entries.map((x) => x.seq)).toEqual([2]);
    expect(s.card).toEqual({ masked: a.masked, tokenPrefix: a.tokenPrefix });
    const badPan = await refused('/v1/stoplist', post({ pan: MIR_PAN_BAD_LUHN }));
    expect(badPan.body.error.code).toBe('card.bad-pan');
    expect(JSON.stringify(badPan.body)).not.toContain(MIR_PAN_BAD_LUHN);
    const removed = (await postJson('/v1/stoplist/remove', { token: e.token })) as { removed: boolean };
    expect(removed.removed).toBe(true);
    // the PAN in no registry file (database, WAL) and in no log line
    const held = registryContents(stack.server.db, stack.dataDir); // its files on SQLite, every row on PostgreSQL
    expect(held).toContain(e.token);
    expect(held.includes(LOST_PAN)).toBe(false);
    expect(held.includes(MIR_PAN_BAD_LUHN)).toBe(false);
    expect(stack.logs.text()).not.toContain(LOST_PAN);
    expect(stack.logs.text()).not.toContain(syntheticPan(1));
  });

  it('without a console bundle the API runs and /console/ answers server.console-missing; / redirects there', async () => {
    const root = await fetch(`${stack.server.httpUrl}/`, { redirect: 'manual' });
    expect([root.status, root.headers.get('location')]).toEqual([302, '/console/']);
    const page = await fetch(`${stack.server.httpUrl}/console/`);
    expect(page.status).toBe(503);
    expect(((await page.json()) as { error: { code: string } }).error.code).toBe('server.console-missing');
    expect((await fetch(`${stack.server.httpUrl}/console/app.js`)).status).toBe(503);
  });

  it('journal search by route and time range; an enrolment token comes with its QR code', async () => {
    const r = JournalSearchAnswer.parse(await postJson('/v1/journal/search', { route: '7', from: '2026-11-10T06:30:00Z', to: '2026-11-11' }));
    expect(r.entries.map((x) => x.seq)).toEqual([2]);
    expect((await refused('/v1/journal/search', post({ from: 'yesterday' }))).body.error.code).toBe('server.bad-request');
    const q = EnrolQrAnswer.parse(await postJson('/v1/console/enrol-tokens', { kind: 'bus', route: '7', ttlSec: 3600 }));
    expect(q.qrSvg).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
    expect(Date.parse(q.expiresAt)).toBeGreaterThan(Date.now());
  });
});
