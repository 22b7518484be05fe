import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, loadConfigFile, loadRules, withRules } from '../../device/config/index.js';
import { DEVICE_KINDS } from '../../protocol/ids.js';
import { expectRcError } from '../support/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'rc-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const busText = `{
  "schema": 1,
  "device": { "id": "bus-1", "kind": "bus", "route": "7" },
  "tariff": {
    "routes": {
      "7": { "fullFareKopecks": -5 }
    }
  }
}
`;

describe('device config', () => {
  it.each(DEVICE_KINDS)('the %s example in test/fixtures/decide validates', (k) => {
    const c = loadConfigFile(`test/fixtures/decide/${k}.config.json`);
    expect(c.device.kind).toBe(k === 'bus' ? 'bus' : k);
    expect(c.device.timeZone).toBe('Europe/Moscow');
  });

  it('fills defaults: Moscow time, 7-minute repeat window, hard anti-passback', () => {
    const c = loadConfig({ schema: 1, device: { id: 'b', kind: 'bus', route: '1' }, tariff: { routes: { '1': { fullFareKopecks: 100 } } } });
    expect(c.device.timeZone).toBe('Europe/Moscow');
    expect(c.tariff!.repeatWindowSec).toBe(420);
    const t = loadConfig({ schema: 1, device: { id: 't', kind: 'turnstile', schoolId: '1' }, school: { schedules: {} } });
    expect(t.school!.antiPassback).toBe('hard');
    expect(t.school!.freePassage).toBe(false);
  });

  it('a bad value is refused naming the file, its line and column, the path and the problem', () => {
    const p = file('bad-fare.json', busText);
    const e = expectRcError(() => loadConfigFile(p));
    expect(e.code).toBe('config.invalid');
    expect(e.message).toContain(`${p}:6:33: tariff.routes.7.fullFareKopecks:`);
    expect(e.message).toMatch(/>=0|greater/);
    expect(e.context).toMatchObject({ file: p, path: 'tariff.routes.7.fullFareKopecks', line: 6 });
  });

  it('broken JSON is refused with the line of the error', () => {
    const p = file('broken.json', '{\n  "schema": 1,\n  "device": {,\n}\n');
    const e = expectRcError(() => loadConfigFile(p));
    expect(e.code).toBe('config.invalid');
    expect(e.message).toContain(`${p}:3:`);
    expect(e.message).toContain('not valid JSON');
  });

  it('a config newer than the code is refused with config.too-new', () => {
    const e = expectRcError(() => loadConfig({ schema: 2, device: {} }, 'new.json'));
    expect(e.code).toBe('config.too-new');
    expect(e.context).toMatchObject({ file: 'new.json', schema: 2, supported: 1 });
  });

  it('a config without a schema version is refused at "schema"', () => {
    const e = expectRcError(() => loadConfig({ device: { id: 'x', kind: 'bus' } }, 'c.json'));
    expect(e.code).toBe('config.invalid');
    expect(e.context?.path).toBe('schema');
  });

  it.each([
    ['a bus without route', { schema: 1, device: { id: 'b', kind: 'bus' }, tariff: { routes: { '1': { fullFareKopecks: 1 } } } }, 'device.route'],
    [
      'a bus route not in the tariff',
      { schema: 1, device: { id: 'b', kind: 'bus', route: '2' }, tariff: { routes: { '1': { fullFareKopecks: 1 } } } },
      'device.route',
    ],
    ['a turnstile without its school', { schema: 1, device: { id: 't', kind: 'turnstile' }, school: { schedules: {} } }, 'device.schoolId'],
    ['a canteen without meals', { schema: 1, device: { id: 'c', kind: 'canteen', schoolId: '1' } }, 'canteen'],
    [
      'an unknown time zone',
      { schema: 1, device: { id: 'b', kind: 'bus', route: '1', timeZone: 'Mars/Olympus' }, tariff: { routes: { '1': { fullFareKopecks: 1 } } } },
      'device.timeZone',
    ],
    [
      'an unknown benefit category',
      {
        schema: 1,
        device: { id: 'b', kind: 'bus', route: '1' },
        tariff: { routes: { '1': { fullFareKopecks: 1 } }, benefits: { astronaut: { kind: 'free' } } },
      },
      'tariff.benefits.astronaut',
    ],
    [
      'a misspelt field',
      { schema: 1, device: { id: 'b', kind: 'bus', route: '1' }, tariff: { routes: { '1': { fullFareKopecks: 1 } }, repeatWindowSecs: 5 } },
      'tariff',
    ],
    [
      'a schedule ending before it starts',
      { schema: 1, device: { id: 't', kind: 'turnstile', schoolId: '1' }, school: { schedules: { student: [{ days: ['mon'], from: '15:00', to: '08:00' }] } } },
      'school.schedules.student.0.to',
    ],
    [
      'a quota that is not a number',
      {
        schema: 1,
        device: { id: 'b', kind: 'bus', route: '1' },
        tariff: { routes: { '1': { fullFareKopecks: 1 } }, benefits: { pensioner: { kind: 'free', quota: { trips: 'many', per: 'month' } } } },
      },
      'tariff.benefits.pensioner.quota.trips',
    ],
  ])('%s is refused at the right path', (_n, raw, path) => {
    const e = expectRcError(() => loadConfig(raw, 'x.json'));
    expect(e.code).toBe('config.invalid');
    expect(e.context?.path).toBe(path);
    expect(e.message.startsWith(`x.json: ${path}`)).toBe(true);
  });

  it('a missing file is config.not-found', () => {
    expect(expectRcError(() => loadConfigFile(join(dir, 'nope.json'))).code).toBe('config.not-found');
  });

  it('optional sections for the runtime and sync validate (readers, peripherals, sync, tokenKey)', () => {
    const c = loadConfigFile('test/fixtures/decide/turnstile.config.json');
    expect(c.readers).toEqual([
      { name: 'vpcd 0', direction: 'entry' },
      { name: 'vpcd 1', direction: 'exit' },
    ]);
    expect(c.sync?.scopes).toEqual(['school:7', 'stoplist']);
    const e = expectRcError(() => loadConfig({ ...c, sync: { brokerUrl: 'http://x' } }, 'y.json'));
    expect(e.context?.path).toBe('sync.brokerUrl');
  });
});

describe('rules file (what the server publishes)', () => {
  it('a published tariff replaces the one in the config', () => {
    const c = loadConfigFile('test/fixtures/decide/bus.config.json');
    const rules = loadRules({ schema: 1, tariff: { routes: { '7': { fullFareKopecks: 4200 } } } });
    expect(withRules(c, rules).tariff!.routes['7']!.fullFareKopecks).toBe(4200);
  });
  it('a bad rules file is config.tariff-invalid and names the path', () => {
    const e = expectRcError(() => loadRules({ schema: 1, tariff: { routes: { '7': { fullFareKopecks: 1.5 } } } }, 'tariff.json'));
    expect(e.code).toBe('config.tariff-invalid');
    expect(e.context?.path).toBe('tariff.routes.7.fullFareKopecks');
  });
  it('a published tariff that drops the route the bus serves is refused', () => {
    const c = loadConfigFile('test/fixtures/decide/bus.config.json');
    const rules = loadRules({ schema: 1, tariff: { routes: { '9': { fullFareKopecks: 4200 } } } });
    expect(expectRcError(() => withRules(c, rules)).code).toBe('config.tariff-invalid');
  });
});
