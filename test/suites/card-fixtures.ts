import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadTraceFile, type VCardSpec } from '../../device/vcard/spec.js';

/** The card fixtures as self-contained specs (traces inlined), so any rig — even one in a child process — can present them. */
const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

export const TRACE_NAMES = ['interac', 'locked-card', 'mastercard-cb-cobadge', 'visa-cb-cobadge'] as const;
export type TraceName = (typeof TRACE_NAMES)[number];

export function cardSpec(name: string): VCardSpec {
  return JSON.parse(readFileSync(`${FIXTURES}cards/${name}.json`, 'utf8')) as VCardSpec;
}

export function tracePath(name: TraceName): string {
  return `${FIXTURES}emv-traces/${name}.json`;
}

export function traceSpec(name: TraceName): VCardSpec {
  return { kind: 'trace', trace: loadTraceFile(tracePath(name)) };
}

/** The synthetic PAN of a card fixture (for token and leak assertions in tests only). */
export function fixturePan(name: string): string {
  const s = cardSpec(name);
  if (s.kind !== 'emv') throw new Error(`${name} is not a synthetic card`);
  return s.pan;
}

/** What reading the mir-gpo1 card gives, whichever way it is read (the token and key version depend on the key). */
export const MIR_GPO1_READ = {
  scheme: 'mir',
  aid: 'A0000006581010',
  maskedPan: '220012******9019',
  expiry: '2028-12',
  psn: '01',
  par: null,
} as const;
