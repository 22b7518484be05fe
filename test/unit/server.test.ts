import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestRegistry, registryContents } from '../support/test-db.js';
import { ErrorCode } from '../../protocol/errors.js';
import { expectRcError } from '../support/errors.js';
import { quietLogger } from '../support/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { decodeRecords } from '../../protocol/wire/codec.js';
import { openEnvelope } from '../../protocol/wire/envelope.js';
import { verifyDelta, verifyManifest } from '../../protocol/wire/verify.js';
import { ChargingQueue, SimulatedCharger } from '../../sync-server/charging.js';
import { applyImport, parseImport, type ImportKind } from '../../sync-server/import.js';
import { Ingest } from '../../sync-server/ingest.js';
import { loadOrCreateSigningKey } from '../../sync-server/keys.js';
import { Publisher } from '../../sync-server/publisher.js';
import { type Db } from '../../sync-server/registry.js';
import { benefitsCsv, cardsCsv, tokenOf } from '../support/registry-csv.js';
import { syntheticPan, syntheticPsn } from '../support/pans.js';
import { createPublicKey } from 'node:crypto';
import fc from 'fast-check';
import { deriveToken } from '../../protocol/token.js';
import { bulkTokenizer } from '../../sync-server/tokenize.js';

const log = quietLogger();
async function* lines(text: string) {
  yield text; // the CSV text in one chunk (the parser streams any chunking)
}

let dir: string;
let db: Db;
let pub: Publisher;
let sent: { topic: string; payload: Buffer; retain: boolean }[];
const key = () => loadOrCreateSigningKey(dir);

async function imp(kind: ImportKind, text: string, skipInvalid = false) {
  const { rows, report } = await parseImport(kind, lines(text), { skipInvalid, tokenKey: DEV_TOKEN_KEY, today: '2026-11-24' });
  const changed = pub.commit(applyImport(db, kind, rows, '2026-11-24'));
  await pub.publish(changed);
  return { report, changed };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rc-srv-unit-'));
  db = openTestRegistry(dir);
  sent = [];
  pub = new Publisher(db, key().privateKey, log, { manifestTtlMs: 86_400_000, deltaRetentionMs: 86_400_000, chunkRecords: 10, maxDeltaRecords: 1000 });
  pub.setTransport({ publish: async (topic, payload, retain) => void sent.push({ topic, payload, retain }) });
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('signing key', () => {
  it('is created once with 0600 permissions and reloaded after', () => {
    const f = join(dir, 'signing-key.pem');
    expect(statSync(f).mode & 0o777).toBe(0o600);
    const again = loadOrCreateSigningKey(dir);
    expect(again.created).toBe(false);
    expect(again.publicKeyPem).toBe(createPublicKey(key().privateKey).export({ type: 'spki', format: 'pem' }).toString());
  });
});

describe('bulk tokeniser', () => {
  it('gives exactly deriveToken for any key, PAN, expiry and PSN, under either scheme', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 100 }),
        fc.stringMatching(/^\d{12,19}$/),
        fc.option(fc.stringMatching(/^[0-9A-Fa-f]{2}$/), { nil: null }),
        fc.integer({ min: 2000, max: 2099 }),
        fc.integer({ min: 1, max: 12 }),
        fc.constantFrom('pan-expiry' as const, 'pan-psn' as const),
        (key, pan, psn, year, month, scheme) => {
          const k = { version: 1, key: Buffer.from(key), scheme };
          const card = { expiry: `${year}-${String(month).padStart(2, '0')}`, psn };
          expect(bulkTokenizer(k)(Buffer.from(pan), card)).toBe(deriveToken(Buffer.from(pan), card, k));
        },
      ),
    );
  });
});

describe('imports', () => {
  it('a file with bad rows is rejected whole, naming line, column and reason; nothing changes', async () => {
    const bad = `person_id,pan,psn,expiry\np1,${syntheticPan(1)},01,2030-01\np2,${syntheticPan(2).slice(0, -1)}0,01,2030-01\np3,${syntheticPan(3)},01,2030-13\n`;
    const err = await expectRcError(imp('cards', bad), ErrorCode.ServerImportInvalid);
    const ctx = JSON.stringify(err.context);
    expect(ctx).toContain('"line":3');
    expect(ctx).toContain('"column":"pan"');
    expect(ctx).toContain('"line":4');
    expect(ctx).not.toContain(syntheticPan(2).slice(0, 12)); // no card number in the report
    expect(db.prepare('SELECT count(*) FROM cards').pluck().get()).toBe(0);
    expect(pub.version('transit')).toBe(0);
  });

  it('with skip-invalid the good rows are applied and the bad ones reported', async () => {
    const { report } = await imp(
      'benefits',
      'person_id,category,valid_from,valid_to\np1,pensioner,2026-01-01,2026-12-31\np2,wizard,2026-01-01,2026-12-31\np3,veteran,2026-05-01,2026-04-01\n',
      true,
    );
    expect(report).toMatchObject({ rows: 3, applied: 1, rejected: 2 });
    expect(report.errors).toEqual([
      { line: 3, column: 'category', reason: expect.any(String) },
      { line: 4, column: 'valid_to', reason: 'valid_to is before valid_from' },
    ]);
  });

  it('a missing column rejects the file at line 1', async () => {
    await expect(imp('cards', 'person_id,pan\np1,1\n')).rejects.toMatchObject({ code: ErrorCode.ServerImportInvalid });
  });

  it('the PAN is tokenised and never stored', async () => {
    await imp('cards', cardsCsv(0, 20));
    const stored = registryContents(db, dir); // the SQLite file and its WAL, or every row on PostgreSQL
    for (let i = 0; i < 20; i++) expect(stored.includes(syntheticPan(i))).toBe(false);
    expect(db.prepare('SELECT token FROM cards WHERE person_id = ?').pluck().get('p7')).toBe(tokenOf(7));
  });

  it("a person's new card replaces the old one in the same list version", async () => {
    await imp('cards', cardsCsv(0, 5));
    await imp('benefits', benefitsCsv(0, 5));
    const v = pub.version('transit');
    sent = [];
    await imp('cards', `person_id,pan,psn,expiry\np2,${syntheticPan(900)},${syntheticPsn(900)},2032-02\n`);
    expect(pub.version('transit')).toBe(v + 1);
    const delta = sent.find((s) => s.topic === `rc/v1/lists/transit/delta/${v}-${v + 1}`)!;
    const d = verifyDelta(delta.payload, { key: createPublicKey(key().privateKey), scope: 'transit', held: v, now: new Date() }).delta;
    expect(d.removes).toEqual([tokenOf(2)]);
    expect(d.upserts).toEqual([
      { token: tokenOf(900, '2032-02'), cardExpiry: '2032-02', benefits: [{ category: 'pensioner', validFrom: '2020-01-01', validTo: '2099-12-31' }] },
    ]);
  });

  it('stop-list rows by PAN (with its expiry) or by token; enrolments make school lists', async () => {
    await imp('cards', cardsCsv(0, 3));
    await imp('stoplist', `pan,expiry,reason\n${syntheticPan(1)},2030-12,lost\n`);
    await imp('stoplist', `token,reason\n${tokenOf(2)},fraud\n`);
    expect(db.prepare('SELECT token, reason FROM stoplist ORDER BY reason').all()).toEqual([
      { token: tokenOf(2), reason: 'fraud' },
      { token: tokenOf(1), reason: 'lost' },
    ]);
    const { changed } = await imp(
      'enrolments',
      'person_id,school_id,role,grade,meal_category,valid_from,valid_to\np0,s12,student,3,free-breakfast,2026-09-01,2027-05-31\np1,s12,staff,,,2026-09-01,2027-05-31\n',
    );
    expect(changed).toEqual(['school:s12']);
    const m = sent.filter((s) => s.topic === 'rc/v1/lists/school:s12/manifest').pop()!;
    const man = verifyManifest(m.payload, { key: createPublicKey(key().privateKey), scope: 'school:s12', held: 0, now: new Date() });
    expect(man).toMatchObject({ version: 1, entries: 2 });
  });
});

describe('publisher', () => {
  it('publishes delta, chunks, then the manifest, all retained; a full rebuild equals the incremental one', async () => {
    await imp('cards', cardsCsv(0, 25));
    const order = sent.map((s) => s.topic.split('/')[4]);
    expect(order[0]).toBe('delta');
    expect(order[order.length - 1]).toBe('manifest');
    expect(sent.every((s) => s.retain)).toBe(true);
    const man = verifyManifest(sent[sent.length - 1]!.payload, { key: createPublicKey(key().privateKey), scope: 'transit', held: 0, now: new Date() });
    expect(man.chunks).toHaveLength(3);
    expect(man.deltas).toEqual([expect.objectContaining({ from: 0, to: 1, records: 25 })]);
    await imp(
      'benefits',
      'person_id,category,valid_from,valid_to\np1,veteran,2026-01-01,2026-12-31\np1,disabled,2026-02-01,2026-12-31\np1,disabled,2026-01-01,2026-12-31\np3,student,2026-01-01,2026-06-30\n',
    );
    // a large import recomputes the whole scope: same entries
    const before = db.prepare("SELECT token, rec FROM entries WHERE scope = 'transit' ORDER BY token").all();
    const bigDirty = new Map([['transit', new Set(Array.from({ length: 20_001 }, (_, i) => i.toString(16).padStart(32, '0')))]]);
    expect(pub.commit(bigDirty)).toEqual([]); // nothing really changed: no new version
    expect(db.prepare("SELECT token, rec FROM entries WHERE scope = 'transit' ORDER BY token").all()).toEqual(before);
    expect(decodeRecords('transit', Buffer.concat(before.map((r) => (r as { rec: Buffer }).rec))).entries).toHaveLength(25);
    expect(before.length).toBe(25);
  });

  it('the header of each signed message parses', async () => {
    await imp('cards', cardsCsv(0, 3));
    const k = createPublicKey(key().privateKey);
    for (const s of sent.filter((x) => !x.topic.includes('/chunk/'))) expect(openEnvelope(s.payload, k).header.t).toMatch(/manifest|delta/);
  });
});

describe('ingest', () => {
  const entry = (seq: number, fare = 0, token = tokenOf(seq)) => ({
    seq,
    time: '2026-11-24T10:00:00.000Z',
    token,
    kind: 'bus',
    result: 'allow' as const,
    reason: 'ok',
    fareKopecks: fare,
    benefit: null,
    lists: {},
  });

  it('stores each (device, seq) once and acknowledges the highest contiguous seq', () => {
    const ing = new Ingest(db);
    expect(ing.store('d1', null, { device: 'd1', entries: [entry(1), entry(2), entry(4)] }).upTo).toBe(2);
    expect(ing.store('d1', null, { device: 'd1', entries: [entry(2), entry(3)] })).toMatchObject({ upTo: 4, stored: 1 });
    expect(ing.store('d1', null, { device: 'd1', entries: [entry(1), entry(2), entry(3), entry(4)] })).toMatchObject({ upTo: 4, stored: 0 });
    expect(db.prepare("SELECT count(*) FROM journal WHERE device = 'd1'").pluck().get()).toBe(4);
  });

  it('refuses a batch whose device id does not match its topic or sender', () => {
    const ing = new Ingest(db);
    expect(() => ing.store('d1', null, { device: 'd2', entries: [entry(1)] })).toThrow(expect.objectContaining({ code: ErrorCode.SyncDeviceMismatch }));
    expect(() => ing.store('d1', 'd9', { device: 'd1', entries: [entry(1)] })).toThrow(expect.objectContaining({ code: ErrorCode.SyncDeviceMismatch }));
    expect(db.prepare('SELECT count(*) FROM journal').pluck().get()).toBe(0);
  });

  it('a declined full fare puts the card on the stop-list; a repayment takes it off', async () => {
    await imp('cards', cardsCsv(0, 3));
    const ing = new Ingest(db);
    ing.store('d1', null, { device: 'd1', entries: [entry(1, 3500, tokenOf(1)), entry(2, 3500, tokenOf(2)), entry(3, 0, tokenOf(0))] });
    const q = new ChargingQueue(db, new SimulatedCharger(db), async (d) => void (await pub.publish(pub.commit(d))), log, undefined, {
      attempts: 1,
      overDays: 0,
    });
    q.setDeclined([tokenOf(2)]);
    expect(await q.runOnce()).toBe(1);
    expect(db.prepare('SELECT status FROM charges ORDER BY seq').pluck().all()).toEqual(['charged', 'declined']);
    expect(pub.version('stoplist')).toBe(1);
    expect(db.prepare('SELECT reason FROM stoplist WHERE token = ?').pluck().get(tokenOf(2))).toBe('charge-declined');
    expect(await q.repay(tokenOf(2))).toEqual({ settled: 1, unblocked: true });
    expect(pub.version('stoplist')).toBe(2);
    expect(db.prepare('SELECT count(*) FROM stoplist').pluck().get()).toBe(0);
  });
});
