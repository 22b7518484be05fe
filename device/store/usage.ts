import { DEVICE_BUILT_IN_TABLE, type CategoryTable } from '../../protocol/categories.js';
import type Database from 'better-sqlite3';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { CounterAdd } from '../../protocol/rules/types.js';
import { decodeUsage, deviceKey, type UsageCard, type UsageDay } from '../../protocol/wire/usage-codec.js';

/**
 * The fleet usage this device holds (issue 10 item 4): one row per active card,
 * the service day they count, this device's watermark (the highest own journal
 * seq the server counted), and, per own tap, the counter additions it made
 * (kept until the server's watermark passes it). Statements only; the Store
 * owns the transactions.
 */
export interface UsageState {
  version: number;
  day: UsageDay | null;
  watermark: number;
}

export interface UsageApply {
  /** null: a snapshot (replaces every card); else the version a delta starts from. */
  fromVersion: number | null;
  toVersion: number;
  /** The records (protocol/wire/usage-codec.ts): the day, cards, watermarks, removes (deltas). */
  records: Uint8Array;
}

const STAND_IN = /^wire-(\d{1,3})$/;

interface CardRow {
  quota_cat: string | null;
  quota_used: number;
  fare_today: number;
  lp_eff: number | null;
  lp_route: number;
  lp_transfers: number;
}

export class Usage {
  private readonly st: ReturnType<typeof prepare>;
  private readonly key: string;
  private cached: UsageState | null = null;

  /**
   * `categories`: the table of the rules the device holds (the published ones once applied), so a
   * category the operator defined reads by its id and its quota counts across buses.
   */
  constructor(
    db: Database.Database,
    deviceId: string,
    private readonly categories: () => CategoryTable = () => DEVICE_BUILT_IN_TABLE,
  ) {
    this.st = prepare(db);
    this.key = deviceKey(deviceId);
  }

  state(): UsageState {
    if (!this.cached) {
      const r = this.st.getState.get() as { version: number; date: string | null; start_ms: number | null; watermark: number } | undefined;
      this.cached = r
        ? { version: r.version, day: r.date !== null && r.start_ms !== null ? { date: r.date, startMs: r.start_ms } : null, watermark: r.watermark }
        : { version: 0, day: null, watermark: 0 };
    }
    return this.cached;
  }

  /** Validate before anything changes: version forward, delta from the version held and of the same day. Returns null for a no-op. */
  plan(u: UsageApply): { day: UsageDay; cards: UsageCard[]; removes: string[]; watermark: number } | null {
    const s = this.state();
    if (!Number.isSafeInteger(u.toVersion) || u.toVersion < 1)
      throw new RcError(ErrorCode.ListInvalid, 'usage version must be a positive integer', { scope: 'usage' });
    if (u.toVersion < s.version)
      throw new RcError(ErrorCode.ListRollback, `usage version ${u.toVersion} is older than the one held (${s.version})`, { scope: 'usage' });
    if (u.toVersion === s.version) return null;
    let d;
    try {
      d = decodeUsage(u.records, u.fromVersion !== null, this.categories()); // a category its rules do not name (yet): a stand-in wire-<n>, no refusal
    } catch (e) {
      throw new RcError(ErrorCode.ListInvalid, `usage records refused: ${(e as Error).message}`, { scope: 'usage' }, { cause: e });
    }
    if (!d.day) throw new RcError(ErrorCode.ListInvalid, 'usage records without a day record', { scope: 'usage' });
    if (u.fromVersion !== null && (u.fromVersion !== s.version || s.day?.date !== d.day.date))
      throw new RcError(ErrorCode.ListVersionGap, `usage delta from ${u.fromVersion} (day ${d.day.date}) does not apply to version ${s.version}`, {
        scope: 'usage',
      });
    const own = d.watermarks.find((w) => w.key === this.key);
    // a snapshot without a watermark for this device: the server counted none of its taps; a delta carries only the watermarks that moved
    return { day: d.day, cards: d.cards, removes: d.removes, watermark: own?.seq ?? (u.fromVersion === null ? 0 : s.watermark) };
  }

  /** Inside a transaction: write a planned apply. */
  write(u: UsageApply, p: NonNullable<ReturnType<Usage['plan']>>): void {
    if (u.fromVersion === null) this.st.clearCards.run();
    for (const t of p.removes) this.st.delCard.run(Buffer.from(t, 'hex'));
    for (const c of p.cards)
      this.st.putCard.run(
        Buffer.from(c.token, 'hex'),
        c.quotaCategory,
        c.quotaUsed,
        c.fareToday,
        c.lastPaid?.effMs ?? null,
        c.lastPaid?.routeIndex ?? 0,
        c.lastPaid?.transfers ?? 0,
      );
    this.st.putState.run(u.toVersion, p.day.date, p.day.startMs, p.watermark);
    this.st.pruneAdds.run(p.watermark);
    this.cached = null;
  }

  /** The fleet record of a token, or null. */
  card(t: Buffer): { card: UsageCard; day: UsageDay } | null {
    const day = this.state().day;
    if (!day) return null;
    const r = this.st.getCard.get(t) as CardRow | undefined;
    if (!r) return null;
    return {
      day,
      card: {
        token: t.toString('hex'),
        quotaCategory: this.named(r.quota_cat),
        quotaUsed: r.quota_used,
        fareToday: r.fare_today,
        lastPaid: r.lp_eff === null ? null : { effMs: r.lp_eff, routeIndex: r.lp_route, transfers: r.lp_transfers },
      },
    };
  }

  /**
   * A category stored as its stand-in wire-<n> (usage applied before the rules defining it)
   * reads by its id as soon as the rules the device holds define that wire id.
   */
  private named(cat: string | null): string | null {
    const m = cat === null ? null : STAND_IN.exec(cat);
    return m ? (this.categories().fromWire(Number(m[1])) ?? cat) : cat;
  }

  /** The counter additions of own taps of this token the server has not counted (seq above the watermark). */
  unseen(t: Buffer): CounterAdd[] {
    const out: CounterAdd[] = [];
    for (const a of this.st.getAdds.all(t, this.state().watermark) as string[]) out.push(...(JSON.parse(a) as CounterAdd[]));
    return out;
  }

  /** Inside the prune's transaction: forget the additions of taps no longer in the journal (old and acknowledged). */
  pruneBeforeJournal(): void {
    this.st.pruneOld.run();
  }

  /** Inside the tap's transaction: remember what this tap added. */
  recordTap(seq: number, t: Buffer, add: readonly CounterAdd[]): void {
    if (add.length > 0) this.st.putAdds.run(seq, t, JSON.stringify(add));
  }
}

function prepare(db: Database.Database) {
  return {
    getState: db.prepare('SELECT version, date, start_ms, watermark FROM usage_state WHERE id = 1'),
    putState: db.prepare('INSERT OR REPLACE INTO usage_state (id, version, date, start_ms, watermark) VALUES (1, ?, ?, ?, ?)'),
    clearCards: db.prepare('DELETE FROM usage_cards'),
    delCard: db.prepare('DELETE FROM usage_cards WHERE token = ?'),
    putCard: db.prepare(
      'INSERT OR REPLACE INTO usage_cards (token, quota_cat, quota_used, fare_today, lp_eff, lp_route, lp_transfers) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    getCard: db.prepare('SELECT quota_cat, quota_used, fare_today, lp_eff, lp_route, lp_transfers FROM usage_cards WHERE token = ?'),
    getAdds: db.prepare('SELECT adds FROM usage_adds WHERE token = ? AND seq > ?').pluck(),
    putAdds: db.prepare('INSERT OR REPLACE INTO usage_adds (seq, token, adds) VALUES (?, ?, ?)'),
    pruneAdds: db.prepare('DELETE FROM usage_adds WHERE seq <= ?'),
    pruneOld: db.prepare('DELETE FROM usage_adds WHERE seq < (SELECT coalesce(min(seq), 9007199254740991) FROM journal)'),
  };
}
