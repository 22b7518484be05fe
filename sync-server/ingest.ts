import { ErrorCode, RcError } from '../protocol/errors.js';
import type { DeviceStatus, JournalBatch } from '../protocol/wire/messages.js';
import type { Db } from './registry.js';

/**
 * Journal ingest: each (device, seq) stored once (INSERT OR IGNORE), the
 * acknowledgement is the highest contiguous seq stored from 1. Full-fare
 * entries (allowed, fare > 0) are queued for deferred charging.
 */
export class Ingest {
  private readonly insert;
  private readonly charge;
  private readonly acked;
  private readonly next;
  private readonly setAcked;
  private readonly touch;
  constructor(private readonly db: Db) {
    this.insert = db.prepare(
      'INSERT OR IGNORE INTO journal(device, seq, time, token, kind, result, reason, fare, benefit, lists, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)',
    );
    this.charge = db.prepare("INSERT OR IGNORE INTO charges(device, seq, token, amount, status, updated_at) VALUES (?,?,?,?, 'pending', ?)");
    this.acked = db.prepare('SELECT acked FROM devices WHERE id = ?').pluck();
    this.next = db.prepare('SELECT seq FROM journal WHERE device = ? AND seq > ? ORDER BY seq LIMIT 5000').pluck();
    this.setAcked = db.prepare('UPDATE devices SET acked = ? WHERE id = ?');
    this.touch = db.prepare('INSERT INTO devices(id, last_seen) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen');
  }

  /**
   * Store a batch that came on rc/v1/device/<topicDevice>/journal.
   * `sender` is the MQTT client id when the broker tells us (embedded), else null.
   * Returns the new acknowledgement and how many entries were new.
   */
  store(topicDevice: string, sender: string | null, batch: JournalBatch, now = new Date()): { upTo: number; stored: number; charges: number } {
    if (batch.device !== topicDevice || (sender !== null && sender !== topicDevice)) {
      throw new RcError(ErrorCode.SyncDeviceMismatch, 'journal batch device id does not match its sender', { topic: topicDevice, payload: batch.device, sender });
    }
    const at = now.toISOString();
    let stored = 0;
    let charges = 0;
    const upTo = this.db.transaction(() => {
      this.touch.run(batch.device, at);
      for (const e of batch.entries) {
        const r = this.insert.run(batch.device, e.seq, e.time, e.token, e.kind, e.result, e.reason, e.fareKopecks, e.benefit, JSON.stringify(e.lists), at);
        if (r.changes === 1) {
          stored++;
          if (e.result === 'allow' && e.fareKopecks > 0 && e.token) {
            this.charge.run(batch.device, e.seq, e.token, e.fareKopecks, at);
            charges++;
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
    return { upTo, stored, charges };
  }

  status(s: DeviceStatus, now = new Date()): void {
    this.db
      .prepare(
        'INSERT INTO devices(id, online, last_seen, lists, backlog, reader) VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET online=excluded.online, last_seen=excluded.last_seen, lists=excluded.lists, backlog=excluded.backlog, reader=coalesce(excluded.reader, devices.reader)',
      )
      .run(s.device, s.online ? 1 : 0, s.online ? now.toISOString() : (this.lastSeen(s.device) ?? now.toISOString()), JSON.stringify(s.lists), s.backlog, s.reader ?? null);
  }

  private lastSeen(id: string): string | undefined {
    return this.db.prepare('SELECT last_seen FROM devices WHERE id = ?').pluck().get(id) as string | undefined;
  }
}
