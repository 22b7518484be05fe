import type Database from 'better-sqlite3';
import type { CounterDelta, TokenMarks, View } from '../../protocol/rules/types.js';

/**
 * Per-token state the rules read and the tap writes: counters per period
 * (quota trips this month, fares today, meals today) and the token's marks
 * (clock anchor, last ride, last paid tap, last passage). Read into the view
 * before a decision; written with the journal entry, in the Store's transaction.
 */
export class Counters {
  private readonly st: ReturnType<typeof prepare>;

  constructor(db: Database.Database) {
    this.st = prepare(db);
  }

  /** Fill the view's counters and marks for one token. */
  read(t: Buffer, view: View): void {
    for (const r of this.st.viewCounters.all(t) as { name: string; period: string; value: number }[]) view.counters[`${r.name}@${r.period}`] = r.value;
    const m = this.st.viewMarks.get(t) as { data: string } | undefined;
    if (m) view.marks = JSON.parse(m.data) as TokenMarks;
  }

  /** Inside a transaction: add the decision's counters and replace the token's marks. */
  apply(t: Buffer, delta: CounterDelta): void {
    for (const a of delta.add) this.st.addCounter.run(t, a.name, a.period, a.by);
    this.st.putMarks.run(t, JSON.stringify(delta.marks));
  }

  /** Delete counters of periods before `period`; returns how many. */
  prune(period: string): number {
    return this.st.pruneCounters.run(period).changes;
  }
}

function prepare(db: Database.Database) {
  return {
    viewCounters: db.prepare('SELECT name, period, value FROM counters WHERE token = ?'),
    viewMarks: db.prepare('SELECT data FROM marks WHERE token = ?'),
    addCounter: db.prepare(
      'INSERT INTO counters (token, name, period, value) VALUES (?, ?, ?, ?) ON CONFLICT(token, name, period) DO UPDATE SET value = value + excluded.value',
    ),
    putMarks: db.prepare('INSERT OR REPLACE INTO marks (token, data) VALUES (?, ?)'),
    pruneCounters: db.prepare('DELETE FROM counters WHERE period < ?'),
  };
}
