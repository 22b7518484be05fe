import { DEVICE_ID_RE } from '../ids.js';
import { ScopeName, type Scope } from '../lists.js';

/**
 * MQTT topic layout (MQTT 3.1.1; every name starts with `rc/v1/`).
 *
 *  server → devices (all retained, so a device that connects later gets them):
 *   rc/v1/lists/<scope>/manifest              signed manifest of the current version
 *   rc/v1/lists/<scope>/delta/<from>-<to>     signed delta, kept for the retention window
 *   rc/v1/lists/<scope>/chunk/<version>/<n>   snapshot chunk n (hash-checked against the manifest)
 *   rc/v1/config/<name>                       signed tariff / schedule document
 *   rc/v1/device/<id>/journal-ack             highest contiguous journal seq stored (retained)
 *
 *  device → server:
 *   rc/v1/device/<id>/journal                 journal batch, QoS 1
 *   rc/v1/device/<id>/status                  retained status; the last will says offline
 *   rc/v1/device/<id>/request                 "please republish scope X" (after a broker restart)
 *
 * A scope name (`transit`, `stoplist`, `school:<id>`) holds no MQTT wildcard
 * or separator, so it is used as one topic level as is.
 */
export const ROOT = 'rc/v1';

export { DEVICE_ID_RE };

export const topics = {
  manifest: (scope: Scope) => `${ROOT}/lists/${scope}/manifest`,
  delta: (scope: Scope, from: number, to: number) => `${ROOT}/lists/${scope}/delta/${from}-${to}`,
  deltaAll: (scope: Scope) => `${ROOT}/lists/${scope}/delta/+`,
  chunk: (scope: Scope, version: number, n: number) => `${ROOT}/lists/${scope}/chunk/${version}/${n}`,
  config: (name: string) => `${ROOT}/config/${name}`,
  /** Fleet usage (issue 10 item 4): the retained snapshot and the per-second deltas. */
  usageSnapshot: () => `${ROOT}/usage/snapshot`,
  usageDelta: () => `${ROOT}/usage/delta`,
  configAll: () => `${ROOT}/config/+`,
  journal: (device: string) => `${ROOT}/device/${device}/journal`,
  journalAck: (device: string) => `${ROOT}/device/${device}/journal-ack`,
  status: (device: string) => `${ROOT}/device/${device}/status`,
  request: (device: string) => `${ROOT}/device/${device}/request`,
  allJournals: () => `${ROOT}/device/+/journal`,
  allStatus: () => `${ROOT}/device/+/status`,
  allRequests: () => `${ROOT}/device/+/request`,
} as const;

export type ParsedTopic =
  | { kind: 'manifest'; scope: Scope }
  | { kind: 'delta'; scope: Scope; from: number; to: number }
  | { kind: 'chunk'; scope: Scope; version: number; n: number }
  | { kind: 'config'; name: string }
  | { kind: 'journal' | 'journal-ack' | 'status' | 'request'; device: string };

const NUM = /^(0|[1-9]\d{0,9})$/;

function scopeOf(s: string | undefined): Scope | null {
  if (s === undefined) return null;
  return ScopeName.safeParse(s).success ? (s as Scope) : null;
}

/** Parse a topic of this protocol; null for anything else. */
export function parseTopic(topic: string): ParsedTopic | null {
  const p = topic.split('/');
  if (p[0] !== 'rc' || p[1] !== 'v1') return null;
  if (p[2] === 'lists') {
    const scope = scopeOf(p[3]);
    if (!scope) return null;
    if (p[4] === 'manifest' && p.length === 5) return { kind: 'manifest', scope };
    if (p[4] === 'delta' && p.length === 6) {
      const m = /^(0|[1-9]\d{0,9})-(0|[1-9]\d{0,9})$/.exec(p[5] ?? '');
      if (!m) return null;
      return { kind: 'delta', scope, from: Number(m[1]), to: Number(m[2]) };
    }
    if (p[4] === 'chunk' && p.length === 7 && NUM.test(p[5] ?? '') && NUM.test(p[6] ?? '')) {
      return { kind: 'chunk', scope, version: Number(p[5]), n: Number(p[6]) };
    }
    return null;
  }
  if (p[2] === 'config' && p.length === 4 && /^[a-z0-9_-]{1,64}$/.test(p[3] ?? '')) return { kind: 'config', name: p[3]! };
  if (p[2] === 'device' && p.length === 5 && DEVICE_ID_RE.test(p[3] ?? '')) {
    const k = p[4];
    if (k === 'journal' || k === 'journal-ack' || k === 'status' || k === 'request') return { kind: k, device: p[3]! };
  }
  return null;
}
