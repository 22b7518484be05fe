/**
 * A real SQLite registry with a school's roster and journal for the school
 * reports: cards and enrolments through the real import, the published rules
 * (test/fixtures/reports/school-rules.json), and turnstile and canteen entries
 * through the real journal ingest, as devices upload them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import { applyImport, parseImport, type ImportKind } from '../../sync-server/import.js';
import { Ingest } from '../../sync-server/ingest.js';
import { loadOrCreateSigningKey } from '../../sync-server/keys.js';
import { Publisher } from '../../sync-server/publisher.js';
import type { Db } from '../../sync-server/registry.js';
import { openTestRegistry } from './test-db.js';
import { cardsCsv, tokenOf } from './registry-csv.js';

export const SCHOOL_RULES = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'reports', 'school-rules.json'), 'utf8')) as unknown;

export interface SchoolRegistry {
  db: Db;
  dir: string;
  pub: Publisher;
  ingest: Ingest;
  close(): void;
}

async function imp(db: Db, pub: Publisher, kind: ImportKind, text: string): Promise<void> {
  async function* lines() {
    yield text;
  }
  const { rows } = await parseImport(kind, lines(), { skipInvalid: false, tokenKey: DEV_TOKEN_KEY, today: '2026-11-01' });
  await pub.publish(pub.commit(applyImport(db, kind, rows, '2026-11-01')));
}

/** A registry with `cards` synthetic cards (persons p0..), the given enrolments CSV rows and the school rules published. */
export async function schoolRegistry(cards: number, enrolments: string[]): Promise<SchoolRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'rc-reports-'));
  const db = openTestRegistry(dir); // DIR/registry.sqlite, or a fresh database with RC_TEST_DB=postgres
  const log = createLogger({ level: 'silent' });
  const pub = new Publisher(db, loadOrCreateSigningKey(dir).privateKey, log, {
    manifestTtlMs: 86_400_000,
    deltaRetentionMs: 86_400_000,
    chunkRecords: 5000,
    maxDeltaRecords: 100_000,
  });
  pub.setTransport({ publish: async () => undefined });
  await imp(db, pub, 'cards', cardsCsv(0, cards));
  await imp(db, pub, 'enrolments', ['person_id,school_id,role,grade,meal_category,valid_from,valid_to', ...enrolments].join('\n') + '\n');
  pub.setConfig('rules', SCHOOL_RULES);
  return {
    db,
    dir,
    pub,
    // a month of recorded gate passages arrives at once: the per-device rate limit (ingest.ts) is for live floods
    ingest: new Ingest(db, {}, { burst: Number.MAX_SAFE_INTEGER, perSecond: Number.MAX_SAFE_INTEGER }),
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface SchoolTap {
  device: string;
  school: string;
  /** local Moscow time, e.g. 2026-11-02T07:50 */
  at: string;
  card: number;
  kind: 'turnstile' | 'canteen';
  direction?: 'entry' | 'exit';
  result?: 'allow' | 'deny';
  reason?: string;
  fare?: number;
  benefit?: string | null;
  meal?: string;
}

/** Upload taps as journal batches (one per device, seq in the order given) through the real ingest. */
export function uploadSchool(r: SchoolRegistry, taps: SchoolTap[], now = new Date('2026-12-01T12:00:00+03:00')): void {
  const byDevice = new Map<string, WireJournalEntry[]>();
  for (const t of taps) {
    const list = byDevice.get(t.device) ?? [];
    const time = new Date(Date.parse(`${t.at}:00+03:00`)).toISOString();
    const data: Record<string, unknown> = { effectiveTime: time };
    if (t.direction) data.direction = t.direction;
    if (t.meal) data.meal = t.meal;
    list.push({
      seq: list.length + 1,
      time,
      token: tokenOf(t.card),
      kind: t.kind,
      result: t.result ?? 'allow',
      reason: t.reason ?? (t.kind === 'canteen' ? 'benefit' : 'ok'),
      fareKopecks: t.fare ?? 0,
      benefit: t.benefit ?? null,
      lists: { [`school:${t.school}`]: 1 },
      data,
    });
    byDevice.set(t.device, list);
  }
  for (const [device, entries] of byDevice) {
    for (let i = 0; i < entries.length; i += 1000) r.ingest.store(device, null, { device, entries: entries.slice(i, i + 1000) }, now);
  }
}

/** A roster of `n` students of school S1 (grades 1..11 in turn; every third one has free breakfast). */
export function rosterOf(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `p${i},S1,student,${(i % 11) + 1},${i % 3 === 0 ? 'free-breakfast' : ''},2026-09-01,2027-05-31`);
}

/**
 * A month of gate passages for students p0..p(n-1) at S1, made by a fixed rule
 * so the numbers can be worked out: on each weekday except 4 Nov, student i is
 * absent when (i + day) % 7 === 0, else enters at 07:40 + (i + day) % 30 min
 * (late when after 08:00) and leaves at 14:05, or at 13:40 when (i + day) % 11 === 0.
 */
export function monthOfGateTaps(n: number, month = '2026-11'): SchoolTap[] {
  const taps: SchoolTap[] = [];
  const [y, m] = month.split('-').map(Number) as [number, number];
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  const hm = (min: number) => `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;
  for (let d = 1; d <= days; d++) {
    const date = `${month}-${String(d).padStart(2, '0')}`;
    const wd = new Date(`${date}T12:00:00Z`).getUTCDay();
    if (wd === 0 || wd === 6 || date === '2026-11-04') continue;
    for (let i = 0; i < n; i++) {
      if ((i + d) % 7 === 0) continue;
      const base = { device: `gate-${i % 2}`, school: 'S1', kind: 'turnstile' as const, card: i };
      taps.push({ ...base, at: `${date}T${hm(7 * 60 + 40 + ((i + d) % 30))}`, direction: 'entry' });
      taps.push({ ...base, at: `${date}T${(i + d) % 11 === 0 ? '13:40' : '14:05'}`, direction: 'exit' });
    }
  }
  return taps;
}
