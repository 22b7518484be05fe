import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../protocol/errors.js';
import type { WireJournalEntry } from '../../protocol/wire/messages.js';
import { GroupCommit, Ingest } from '../../sync-server/ingest.js';
import { openRegistry, type Db } from '../../sync-server/registry.js';
import { fullFareEntry } from '../support/journal-rows.js';

/** The server's journal path (issue 13 figure: ingest ≥ 20,000/s with durable acks): uploads of one turn share a transaction and an fsync. */
const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function registry(): Db {
  const dir = mkdtempSync(join(tmpdir(), 'rc-ingest-group-'));
  dirs.push(dir);
  const db = openRegistry(dir);
  db.pragma('synchronous = FULL'); // as the server runs it
  dbs.push(db);
  return db;
}

const entry = (seq: number): WireJournalEntry => fullFareEntry(seq, `${seq.toString(16).padStart(31, '0')}a`, new Date().toISOString());

describe('ingest group commit', () => {
  it('uploads submitted in one turn are stored in one transaction, resolve with their own acks after one fsync; a refused one refuses only itself', async () => {
    const db = registry();
    const ing = new Ingest(db, {}, {}, 'group');
    const commits: number[] = [];
    // every commit of the registry's connection bumps data_version for another connection: count them from outside
    const watcher = openRegistry(join(db.name, '..'));
    dbs.push(watcher);
    const version = () => watcher.pragma('data_version', { simple: true }) as number;
    commits.push(version());
    const a = ing.submit('d1', { device: 'd1', entries: [entry(1), entry(2)] });
    const b = ing.submit('d2', { device: 'd2', entries: [entry(1), entry(3)] });
    const bad = ing.submit('d3', { device: 'd9', entries: [entry(1)] }); // device id does not match its topic
    expect(ing.busy()).toBe(true);
    const [ra, rb] = await Promise.all([a, b]);
    await expect(bad).rejects.toMatchObject({ code: ErrorCode.SyncDeviceMismatch });
    expect(ra).toMatchObject({ upTo: 2, stored: 2 });
    expect(rb).toMatchObject({ upTo: 1, stored: 2 });
    commits.push(version());
    expect(commits[1]! - commits[0]!, 'one commit for the three uploads').toBe(1);
    expect(ing.syncs, 'one fsync for the three uploads').toBe(1);
    expect(db.prepare('SELECT device, count(*) AS n FROM journal GROUP BY device ORDER BY device').all()).toEqual([
      { device: 'd1', n: 2 },
      { device: 'd2', n: 2 },
    ]);
    // the ingest commit itself did not sync: synchronous is back to FULL for everything else
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
  });

  it('a commit made while an fsync runs waits for the next one; every waiter resolves', async () => {
    const db = registry();
    db.prepare("INSERT INTO meta(key, value) VALUES ('x', '1') ON CONFLICT(key) DO UPDATE SET value = excluded.value").run();
    const g = new GroupCommit(`${db.name}-wal`);
    const first = g.durable();
    const second = g.durable(); // arrives while the first fsync runs
    const third = g.durable();
    await Promise.all([first, second, third]);
    expect(g.syncs).toBe(2);
  });

  it('an fsync that fails rejects its waiters (no ack is sent)', async () => {
    const g = new GroupCommit('/nonexistent/registry.sqlite-wal');
    await expect(g.durable()).rejects.toThrow(/ENOENT/);
  });
});
