import { z } from 'zod';
import { ErrorCode, RcError } from '../protocol/errors.js';
import type { DeviceStatus, JournalBatch, WireJournalEntry } from '../protocol/wire/messages.js';
import type { Db } from './registry.js';
import { serviceDay, settlementOptions, type SettlementOptions } from './settlement/days.js';

/**
 * What the server keeps of an entry's `data`: each field is checked on its own,
 * a malformed one is dropped (null) and the entry is still stored.
 */
const str = z.string().min(1).max(64).optional().catch(undefined);
const EntryData = z.object({
  effectiveTime: z.iso.datetime({ offset: true }).optional().catch(undefined),
  route: str,
  vehicle: str,
  direction: z.enum(['entry', 'exit']).optional().catch(undefined),
  reader: str,
  meal: str,
  flags: z.array(z.string().max(64)).max(32).optional().catch(undefined),
});

/**
 * Journal ingest: each (device, seq) stored once (INSERT OR IGNORE) with the
 * whole entry (route, vehicle, direction, reader, meal, flags, effective time,
 * list versions and the device's decision); the acknowledgement is the highest
 * contiguous seq stored from 1. In the same transaction each new entry with a
 * token marks its (token, service day) for settlement; an entry timed far from
 * its arrival is stored flagged (settlement.time-out-of-range) and not settled.
 */
export class Ingest {
  private readonly insert;
  private readonly dirty;
  private readonly acked;
  private readonly next;
  private readonly setAcked;
  private readonly touch;
  private readonly opts: SettlementOptions;
  constructor(
    private readonly db: Db,
    settlement: Partial<SettlementOptions> = {},
  ) {
    this.opts = settlementOptions(settlement);
    this.insert = db.prepare(
      `INSERT OR IGNORE INTO journal(device, seq, time, token, kind, result, reason, fare, benefit, lists, received_at,
         route, vehicle, direction, reader, meal, flags, eff_ms, service_day, settle_code) VALUES (?,?,?,?,?,?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?)`,
    );
    this.dirty = db.prepare('INSERT OR IGNORE INTO settle_dirty(token, day) VALUES (?, ?)');
    this.acked = db.prepare('SELECT acked FROM devices WHERE id = ?').pluck();
    this.next = db.prepare('SELECT seq FROM journal WHERE device = ? AND seq > ? ORDER BY seq LIMIT 5000').pluck();
    this.setAcked = db.prepare('UPDATE devices SET acked = ? WHERE id = ?');
    this.touch = db.prepare('INSERT INTO devices(id, last_seen) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen');
  }

  /**
   * Store a batch that came on rc/v1/device/<topicDevice>/journal.
   * `sender` is the MQTT client id when the broker tells us (embedded), else null.
   * Returns the new acknowledgement, how many entries were new and how many of them wait for settlement.
   */
  store(topicDevice: string, sender: string | null, batch: JournalBatch, now = new Date()): { upTo: number; stored: number; settle: number } {
    if (batch.device !== topicDevice || (sender !== null && sender !== topicDevice)) {
      throw new RcError(ErrorCode.SyncDeviceMismatch, 'journal batch device id does not match its sender', {
        topic: topicDevice,
        payload: batch.device,
        sender,
      });
    }
    const at = now.toISOString();
    let stored = 0;
    let settle = 0;
    const upTo = this.db.transaction(() => {
      this.touch.run(batch.device, at);
      for (const e of batch.entries) {
        const row = this.row(e, now.getTime());
        const lists = JSON.stringify(e.lists);
        const r = this.insert.run(batch.device, e.seq, e.time, e.token, e.kind, e.result, e.reason, e.fareKopecks, e.benefit, lists, at, ...row.extra);
        if (r.changes === 1) {
          stored++;
          if (e.token && row.code === null) {
            this.dirty.run(e.token, row.day);
            settle++;
          }
        }
      }
      let acked = (this.acked.get(batch.device) as number | undefined) ?? 0;
      for (;;) {
        const seqs = this.next.all(batch.device, acked) as number[];
        let moved = false;
        for (const s of seqs) {
          if (s !== acked + 1) break;
          acked = s;
          moved = true;
        }
        if (!moved || seqs.length < 5000) break;
      }
      this.setAcked.run(acked, batch.device);
      return acked;
    })();
    return { upTo, stored, settle };
  }

  private row(e: WireJournalEntry, nowMs: number): { extra: unknown[]; day: string; code: string | null } {
    const d = EntryData.safeParse(e.data ?? {});
    const data = d.success ? d.data : {};
    const eff = data.effectiveTime !== undefined ? Date.parse(data.effectiveTime) : Date.parse(e.time);
    const day = serviceDay(eff, this.opts);
    const code = eff > nowMs + this.opts.maxFutureMs || eff < nowMs - this.opts.maxPastMs ? ErrorCode.SettlementTimeOutOfRange : null;
    const extra = [
      data.route ?? null,
      data.vehicle ?? null,
      data.direction ?? null,
      data.reader ?? null,
      data.meal ?? null,
      JSON.stringify(data.flags ?? []),
      eff,
      day,
      code,
    ];
    return { extra, day, code };
  }

  status(s: DeviceStatus, now = new Date()): void {
    this.db
      .prepare(
        'INSERT INTO devices(id, online, last_seen, lists, backlog, reader) VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET online=excluded.online, last_seen=excluded.last_seen, lists=excluded.lists, backlog=excluded.backlog, reader=coalesce(excluded.reader, devices.reader)',
      )
      .run(
        s.device,
        s.online ? 1 : 0,
        s.online ? now.toISOString() : (this.lastSeen(s.device) ?? now.toISOString()),
        JSON.stringify(s.lists),
        s.backlog,
        s.reader ?? null,
      );
  }

  private lastSeen(id: string): string | undefined {
    return this.db.prepare('SELECT last_seen FROM devices WHERE id = ?').pluck().get(id) as string | undefined;
  }
}
