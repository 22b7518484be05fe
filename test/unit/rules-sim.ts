// Test helper (not a test file): runs taps through the pure decide() against an
// in-memory model of the store (lists from a fixture file, counters and marks
// updated from each decision's counterDelta), exactly as the store would.
import { readFileSync } from 'node:fs';
import type { SchoolEntry, StopEntry, TransitEntry } from '../../protocol/lists.js';
import { loadConfigFile } from '../../device/config/load.js';
import type { Config } from '../../device/config/schema.js';
import { decide } from '../../protocol/rules/index.js';
import type { Decision, Direction, Tap, TokenMarks, View } from '../../protocol/rules/types.js';
import { parseListsFile } from '../../device/store/lists-file.js';

export const FIX = 'test/fixtures/decide';
export const fixtureConfig = (name: string): Config => loadConfigFile(`${FIX}/${name}.config.json`);
export const fixtureLists = () => parseListsFile(readFileSync(`${FIX}/lists.json`, 'utf8'), `${FIX}/lists.json`);

export const T = {
  pensioner: '11111111111111111111111111111111',
  schoolchild: '22222222222222222222222222222222',
  pensionerDisabled: '33333333333333333333333333333333',
  stopped: '44444444444444444444444444444444',
  expiredOct: '55555555555555555555555555555555',
  student2: '66666666666666666666666666666666',
  staff: '77777777777777777777777777777777',
  student7: '88888888888888888888888888888888',
  unknown: 'ffffffffffffffffffffffffffffffff',
} as const;

/** "2026-11-24 08:00" in Moscow time → epoch ms. */
export const msk = (s: string): number => Date.parse(s.replace(' ', 'T') + (s.length <= 16 ? ':00' : '') + '+03:00');

export interface TapOpts {
  mono?: number;
  boot?: string;
  dir?: Direction;
  expiry?: string;
  route?: string;
  vehicle?: string;
}
export function mkTap(wall: number, token: string, o: TapOpts = {}): Tap {
  return {
    wallTime: wall,
    monotonicMs: o.mono ?? wall,
    bootId: o.boot ?? 'boot-1',
    direction: o.dir ?? null,
    card: { token, expiry: o.expiry ?? null },
    ...(o.route ? { route: o.route } : {}),
    ...(o.vehicle ? { vehicle: o.vehicle } : {}),
  };
}

export class Sim {
  transit = new Map<string, TransitEntry>();
  stop = new Map<string, StopEntry>();
  schools = new Map<string, Map<string, SchoolEntry>>();
  counters = new Map<string, Record<string, number>>();
  marks = new Map<string, TokenMarks>();
  constructor(public cfg: Config) {
    for (const l of fixtureLists()) {
      for (const e of l.entries) {
        if (l.scope === 'transit') this.transit.set(e.token, e as TransitEntry);
        else if (l.scope === 'stoplist') this.stop.set(e.token, e as StopEntry);
        else {
          const m = this.schools.get(l.scope) ?? new Map<string, SchoolEntry>();
          m.set(e.token, e as SchoolEntry);
          this.schools.set(l.scope, m);
        }
      }
    }
  }
  view(token: string): View {
    const schools: Record<string, SchoolEntry> = {};
    for (const [scope, m] of this.schools) {
      const e = m.get(token);
      if (e) schools[scope] = e;
    }
    return {
      transit: this.transit.get(token) ?? null,
      stop: this.stop.get(token) ?? null,
      schools,
      counters: { ...(this.counters.get(token) ?? {}) },
      marks: structuredClone(this.marks.get(token) ?? {}),
      listVersions: {},
    };
  }
  run(tap: Tap): Decision {
    const d = decide(tap, this.view(tap.card.token), this.cfg);
    const c = this.counters.get(tap.card.token) ?? {};
    for (const a of d.counterDelta.add) c[`${a.name}@${a.period}`] = (c[`${a.name}@${a.period}`] ?? 0) + a.by;
    this.counters.set(tap.card.token, c);
    this.marks.set(tap.card.token, d.counterDelta.marks);
    return d;
  }
  setCounter(token: string, key: string, v: number): void {
    const c = this.counters.get(token) ?? {};
    c[key] = v;
    this.counters.set(token, c);
  }
}

/** "allow benefit 0" */
export const brief = (d: Decision): string => `${d.result} ${d.reason} ${d.fareKopecks}`;
