import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import { expectRcError, rcErrorCodeOf } from '../support/errors.js';
import { BENEFIT_CATEGORIES, MEAL_CATEGORIES, STOP_REASONS, type SchoolEntry, type StopEntry, type TransitEntry } from '../../protocol/lists.js';
import {
  CHUNK_HEADER,
  JournalBatch,
  RECORD_SIZE,
  decodeRecords,
  encodeRecords,
  generateSigningKey,
  loadPublicKey,
  parseControl,
  parseTopic,
  publicKeyPem,
  sealDelta,
  sealManifest,
  splitChunks,
  topics,
  verifyChunk,
  verifyDelta,
  verifyManifest,
} from '../../protocol/wire/index.js';

const hex16 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex'));
const isoDate = fc.integer({ min: 10_957, max: 40_000 }).map((d) => new Date(d * 86_400_000).toISOString().slice(0, 10));
const ym = fc.tuple(fc.integer({ min: 2000, max: 2099 }), fc.integer({ min: 1, max: 12 })).map(([y, m]) => `${y}-${String(m).padStart(2, '0')}`);
const transit: fc.Arbitrary<TransitEntry> = fc.record({
  token: hex16,
  cardExpiry: ym,
  benefits: fc.array(fc.record({ category: fc.constantFrom(...BENEFIT_CATEGORIES), validFrom: isoDate, validTo: isoDate }), { maxLength: 8 }),
});
const school: fc.Arbitrary<SchoolEntry> = fc.record({
  token: hex16,
  cardExpiry: ym,
  role: fc.constantFrom('student' as const, 'staff' as const),
  grade: fc.option(fc.integer({ min: 0, max: 12 }), { nil: null }),
  mealCategory: fc.option(fc.constantFrom(...MEAL_CATEGORIES), { nil: null }),
  validFrom: isoDate,
  validTo: isoDate,
});
const stop: fc.Arbitrary<StopEntry> = fc.record({ token: hex16, reason: fc.constantFrom(...STOP_REASONS), since: isoDate });
const uniq = <T extends { token: string }>(a: fc.Arbitrary<T>) => fc.uniqueArray(a, { selector: (e) => e.token, maxLength: 40 });

describe('binary list codec', () => {
  it('round-trips transit entries, one record per benefit (24 bytes each)', () => {
    fc.assert(
      fc.property(uniq(transit), fc.array(hex16, { maxLength: 5 }), (entries, removes) => {
        const buf = encodeRecords('transit', entries, removes);
        const records = entries.reduce((a, e) => a + Math.max(1, e.benefits.length), 0) + removes.length;
        expect(buf.length).toBe(records * RECORD_SIZE);
        expect(decodeRecords('transit', buf)).toEqual({ entries, removes });
      }),
    );
  });
  it('round-trips school and stop-list entries', () => {
    fc.assert(
      fc.property(uniq(school), (entries) => {
        expect(decodeRecords('school:7', encodeRecords('school:7', entries)).entries).toEqual(entries);
      }),
    );
    fc.assert(
      fc.property(uniq(stop), (entries) => {
        expect(decodeRecords('stoplist', encodeRecords('stoplist', entries)).entries).toEqual(entries);
      }),
    );
  });
  it('never crashes on arbitrary bytes: decodes or refuses with sync.payload-invalid', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 * 6 }), fc.constantFrom('transit', 'stoplist', 'school:a'), (bytes, scope) => {
        const c = rcErrorCodeOf(() => decodeRecords(scope, bytes));
        expect(c === undefined || c === ErrorCode.SyncPayloadInvalid).toBe(true);
      }),
    );
  });
  it('refuses an unknown category id and a record of another scope kind', () => {
    const buf = encodeRecords('transit', [
      { token: 'ab'.repeat(16), cardExpiry: '2030-01', benefits: [{ category: 'veteran', validFrom: '2026-01-01', validTo: '2026-12-31' }] },
    ]);
    buf[17] = 200;
    expectRcError(() => decodeRecords('transit', buf), ErrorCode.SyncPayloadInvalid);
    const st = encodeRecords('stoplist', [{ token: 'ab'.repeat(16), reason: 'lost', since: '2026-01-01' }]);
    expectRcError(() => decodeRecords('transit', st), ErrorCode.SyncPayloadInvalid);
    expectRcError(() => decodeRecords('stoplist', encodeRecords('stoplist', [], ['ab'.repeat(16)]), false), ErrorCode.SyncPayloadInvalid);
  });
});

describe('topics', () => {
  it('parse back what they build, and nothing else', () => {
    expect(parseTopic(topics.chunk('school:12', 5, 3))).toEqual({ kind: 'chunk', scope: 'school:12', version: 5, n: 3 });
    expect(parseTopic(topics.delta('transit', 4, 9))).toEqual({ kind: 'delta', scope: 'transit', from: 4, to: 9 });
    expect(parseTopic(topics.journal('bus-17'))).toEqual({ kind: 'journal', device: 'bus-17' });
    expect(parseTopic('rc/v1/lists/other/manifest')).toBeNull();
    expect(parseTopic('rc/v1/device/a+b/journal')).toBeNull();
  });
});

describe('signed messages', () => {
  const { privateKey, publicKey } = generateSigningKey();
  const other = generateSigningKey();
  const now = new Date('2026-11-24T12:00:00Z');
  const entries: TransitEntry[] = Array.from({ length: 50 }, (_, i) => ({ token: i.toString(16).padStart(32, '0'), cardExpiry: '2030-05', benefits: [] }));
  const records = encodeRecords('transit', entries);
  const { refs, payloads } = splitChunks(3, records, 16);
  const manifest = sealManifest({ scope: 'transit', version: 3, entries: 50, records: 50, chunks: refs, deltas: [], now, ttlMs: 86_400_000 }, privateKey);
  const ctx = { key: publicKey, scope: 'transit' as const, held: 2, now };

  it('a manifest verifies and its chunks reassemble the list', () => {
    const m = verifyManifest(manifest, ctx);
    expect(m.chunks).toHaveLength(4);
    const all = Buffer.concat(payloads.map((p, n) => verifyChunk(p, m, n)));
    expect(decodeRecords('transit', all, false).entries).toEqual(entries);
  });
  it('the public key loads from PEM', () => {
    expect(verifyManifest(manifest, { ...ctx, key: loadPublicKey(publicKeyPem(publicKey)) }).version).toBe(3);
  });
  it('refuses a forged signature, an older version, another scope, an expired manifest', () => {
    const forged = sealManifest({ scope: 'transit', version: 9, entries: 0, records: 0, chunks: [], deltas: [], now, ttlMs: 1000 }, other.privateKey);
    expectRcError(() => verifyManifest(forged, ctx), ErrorCode.SyncBadSignature);
    const flipped = Buffer.from(manifest);
    flipped[20] = flipped[20]! ^ 1;
    expectRcError(() => verifyManifest(flipped, ctx), ErrorCode.SyncBadSignature);
    expectRcError(() => verifyManifest(manifest, { ...ctx, held: 4 }), ErrorCode.SyncRollback);
    expectRcError(() => verifyManifest(manifest, { ...ctx, scope: 'stoplist' }), ErrorCode.SyncWrongScope);
    expectRcError(() => verifyManifest(manifest, { ...ctx, now: new Date(now.getTime() + 2 * 86_400_000) }), ErrorCode.SyncExpired);
  });
  it('refuses garbage and oversized payloads', () => {
    expectRcError(
      () => verifyManifest(Buffer.from('hello world, not a manifest at all......................................................'), ctx),
      ErrorCode.SyncPayloadInvalid,
    );
    expectRcError(() => verifyManifest(Buffer.alloc(9 * 1024 * 1024), ctx), ErrorCode.SyncPayloadTooLarge);
  });
  it('refuses a truncated chunk, a tampered chunk and a chunk of another position', () => {
    const m = verifyManifest(manifest, ctx);
    expectRcError(() => verifyChunk(payloads[0]!.subarray(0, CHUNK_HEADER + 24), m, 0), ErrorCode.SyncBadChunk);
    const t = Buffer.from(payloads[1]!);
    t[CHUNK_HEADER + 3] = t[CHUNK_HEADER + 3]! ^ 0xff;
    expectRcError(() => verifyChunk(t, m, 1), ErrorCode.SyncBadChunk);
    expectRcError(() => verifyChunk(payloads[1]!, m, 2), ErrorCode.SyncBadChunk);
  });
  it('a delta verifies with upserts and removes, and an old delta is a rollback', () => {
    const body = encodeRecords('transit', [entries[0]!], ['ff'.repeat(16)]);
    const { payload } = sealDelta('transit', 2, 3, body, now, 3_600_000, privateKey);
    const v = verifyDelta(payload, ctx);
    expect(v.delta).toMatchObject({ fromVersion: 2, toVersion: 3, upserts: [entries[0]], removes: ['ff'.repeat(16)] });
    expectRcError(() => verifyDelta(payload, { ...ctx, held: 3 }), ErrorCode.SyncRollback);
    expectRcError(() => verifyDelta(payload, { ...ctx, scope: 'school:1' }), ErrorCode.SyncWrongScope);
  });
});

describe('control messages', () => {
  it('a journal batch is schema-checked and size-limited', () => {
    const ok = {
      device: 'bus-1',
      entries: [{ seq: 1, time: '2026-11-24T10:00:00+03:00', token: null, kind: 'bus', result: 'deny', reason: 'unknown', fareKopecks: 0, benefit: null }],
    };
    expect(parseControl(Buffer.from(JSON.stringify(ok)), JournalBatch, 1e6).entries[0]!.lists).toEqual({});
    expectRcError(() => parseControl(Buffer.from('{"device":"x y"}'), JournalBatch, 1e6), ErrorCode.SyncPayloadInvalid);
    expectRcError(() => parseControl(Buffer.from('{'), JournalBatch, 1e6), ErrorCode.SyncPayloadInvalid);
    expectRcError(() => parseControl(Buffer.alloc(100), JournalBatch, 10), ErrorCode.SyncPayloadTooLarge);
  });
});
