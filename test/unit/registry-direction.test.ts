import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openRegistry } from '../../sync-server/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'rc-registry-direction-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('server registry: one direction vocabulary', () => {
  it('a registry from before entry/exit has its stored in/out gate directions rewritten when it opens; both and none stay', () => {
    const old = openRegistry(dir);
    old.exec('DROP TABLE schema_migrations'); // a registry from before versioned migrations
    const add = old.prepare(
      `INSERT INTO device_identities(id, kind, school, route, vehicle, direction, scopes, identity_key, box_key, pw_hash, mosq_hash, enrolled_at, token_id)
       VALUES (?, 'turnstile', '7', NULL, NULL, ?, '[]', 'k', 'b', 'h', 'm', '2026-11-01T00:00:00Z', 't')`,
    );
    for (const [id, d] of [
      ['gate-in', 'in'],
      ['gate-out', 'out'],
      ['gate-both', 'both'],
      ['gate-none', null],
    ] as const)
      add.run(id, d);
    old.close();

    const db = openRegistry(dir);
    const rows = db.prepare('SELECT id, direction FROM device_identities ORDER BY id').all();
    db.close();
    expect(rows).toEqual([
      { id: 'gate-both', direction: 'both' },
      { id: 'gate-in', direction: 'entry' },
      { id: 'gate-none', direction: null },
      { id: 'gate-out', direction: 'exit' },
    ]);
  });
});
