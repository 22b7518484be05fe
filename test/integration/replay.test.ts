// rc-device replay as a process: the real CLI, rules and SQLite store.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'rc-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const F = 'test/fixtures/decide';

function replay(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'device/cli.ts', 'replay', ...args], {
    encoding: 'utf8',
    env: { ...process.env, RC_TOKEN_KEY: '', ...env },
    timeout: 60_000,
  });
  const lines = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: r.status, lines, stderr: r.stderr, stdout: r.stdout };
}
const brief = (l: Record<string, unknown>) => `${l.result} ${l.reason} ${l.fareKopecks}`;

describe('rc-device replay', () => {
  it('bus: benefit, repeat, unknown at full fare, stop-list, expired, percent, best entitlement, transfer, PAN', () => {
    const r = replay(['--config', `${F}/bus.config.json`, '--lists', `${F}/lists.json`, '--taps', `${F}/bus.taps.jsonl`]);
    expect(r.status).toBe(0);
    expect(r.lines.map(brief)).toEqual([
      'allow benefit 0',
      'allow repeat-tap 0',
      'allow full-fare 3500',
      'deny stop-list 0',
      'deny card-expired 0',
      'allow benefit 1750',
      'allow benefit 0',
      'allow transfer 0',
      'allow full-fare 3500',
    ]);
    expect(r.lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(r.lines[0]).toMatchObject({
      line: 1,
      token: '11111111111111111111111111111111',
      benefit: 'pensioner',
      display: { ru: 'Льгота. Проезд бесплатный', en: 'Benefit. Free ride' },
    });
    // the PAN is tokenised on read; only the masked PAN is printed
    expect(r.lines[8]!.maskedPan).toBe('220000******0004');
    expect(r.lines[8]!.token).toMatch(/^[0-9a-f]{32}$/);
    expect(r.stdout).not.toContain('2200000000000004');
    expect(r.stderr).toContain('DEVELOPMENT key');
  });

  it('the same taps from the same state give the same output, run after run', () => {
    const args = ['--config', `${F}/bus.config.json`, '--lists', `${F}/lists.json`, '--taps', `${F}/bus.taps.jsonl`];
    expect(replay(args).stdout).toBe(replay(args).stdout);
  });

  it('turnstile: entry, anti-passback, exit, after hours, staff, not enrolled', () => {
    const r = replay(['--config', `${F}/turnstile.config.json`, '--lists', `${F}/lists.json`, '--taps', `${F}/school.taps.jsonl`]);
    expect(r.status).toBe(0);
    expect(r.lines.map(brief)).toEqual(['allow ok 0', 'deny anti-passback 0', 'allow ok 0', 'deny outside-hours 0', 'allow ok 0', 'deny not-enrolled 0']);
    expect(r.lines.map((l) => l.direction)).toEqual(['entry', 'entry', 'exit', 'entry', 'entry', 'entry']);
  });

  it('canteen: free breakfast once, no entitlement, free lunch, paid second lunch, after hours', () => {
    const r = replay(['--config', `${F}/canteen.config.json`, '--lists', `${F}/lists.json`, '--taps', `${F}/canteen.taps.jsonl`]);
    expect(r.status).toBe(0);
    expect(r.lines.map(brief)).toEqual([
      'allow benefit 0',
      'deny meal-already-taken 0',
      'deny not-entitled 0',
      'allow benefit 0',
      'allow paid-meal 12000',
      'allow paid-meal 12000',
      'deny outside-hours 0',
    ]);
  });

  it('with --db the store keeps counters and journal between runs, and never holds the PAN', () => {
    const db = join(dir, 'bus.db');
    const taps = join(dir, 'pan.jsonl');
    writeFileSync(taps, '{"time": "2026-11-24T10:00:00+03:00", "pan": "2200000000000004", "expiry": "2030-12"}\n');
    const args = ['--config', `${F}/bus.config.json`, '--lists', `${F}/lists.json`, '--taps', taps, '--db', db];
    const a = replay(args, { RC_TOKEN_KEY: '00112233445566778899aabbccddeeff', RC_TOKEN_KEY_VERSION: '3' });
    const b = replay(args, { RC_TOKEN_KEY: '00112233445566778899aabbccddeeff', RC_TOKEN_KEY_VERSION: '3' });
    expect(a.stderr).not.toContain('DEVELOPMENT');
    expect(a.lines[0]).toMatchObject({ seq: 1, reason: 'full-fare' });
    // same time again: the repeat window remembered in the store file
    expect(b.lines[0]).toMatchObject({ seq: 2, reason: 'repeat-tap' });
    for (const f of readdirSync(dir).filter((f) => f.startsWith('bus.db'))) {
      const bytes = readFileSync(join(dir, f));
      expect(bytes.includes(Buffer.from('2200000000000004')), f).toBe(false);
      expect(bytes.includes(Buffer.from('220000******0004')), f).toBe(false);
    }
  });

  it('a bad taps line is refused with file, line and field, before any tap runs; the PAN is not echoed', () => {
    const taps = join(dir, 'bad.jsonl');
    writeFileSync(
      taps,
      [
        '{"time": "2026-11-24T10:00:00+03:00", "token": "11111111111111111111111111111111"}',
        '',
        '{"time": "2026-11-24 10:00", "pan": "2200000000000004"}',
      ].join('\n'),
    );
    const r = replay(['--config', `${F}/bus.config.json`, '--lists', `${F}/lists.json`, '--taps', taps]);
    expect(r.status).toBe(1);
    expect(r.lines).toEqual([]);
    expect(r.stderr).toContain(`input.invalid: ${taps}:3:1: time:`);
    expect(r.stderr).not.toContain('2200000000000004');
  });

  it('a bad config is refused with config.invalid naming the file and the path', () => {
    const cfg = join(dir, 'bad.config.json');
    writeFileSync(
      cfg,
      JSON.stringify({ schema: 1, device: { id: 'b', kind: 'bus', route: '7' }, tariff: { routes: { '7': { fullFareKopecks: 'free' } } } }, null, 2),
    );
    const r = replay(['--config', cfg, '--taps', `${F}/bus.taps.jsonl`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`config.invalid: ${cfg}:11:28: tariff.routes.7.fullFareKopecks`);
    expect(r.stderr).toContain('tariff.routes.7.fullFareKopecks');
  });

  it('a list with an unknown category is refused: store.list-invalid with file, line and path', () => {
    const lists = join(dir, 'bad-lists.json');
    writeFileSync(
      lists,
      JSON.stringify(
        {
          lists: [
            {
              scope: 'transit',
              version: 1,
              entries: [{ token: 'a'.repeat(32), cardExpiry: '2030-01', benefits: [{ category: 'wizard', validFrom: '2020-01-01', validTo: '2030-01-01' }] }],
            },
          ],
        },
        null,
        2,
      ),
    );
    const r = replay(['--config', `${F}/bus.config.json`, '--lists', lists, '--taps', `${F}/bus.taps.jsonl`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/store\.list-invalid: .*bad-lists\.json:\d+:\d+: lists\.0\.entries\.0\.benefits\.0\.category/);
  });
});
