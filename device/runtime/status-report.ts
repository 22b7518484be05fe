import type { Config } from '../config/schema.js';
import type { Store } from '../store/index.js';
import type { ReaderStatus, RuntimeStatus, TapReport } from './status.js';

/** What the runtime knows about itself; the store adds the lists and the journal. */
export interface StatusParts {
  config: Config;
  startedAt: Date;
  state: RuntimeStatus['state'];
  pcsc: RuntimeStatus['pcsc'];
  readers: ReaderStatus[];
  peripherals: RuntimeStatus['peripherals'];
  lastTap: TapReport | null;
  taps: number;
  sync: RuntimeStatus['sync'];
  store: Store;
  /** Wall time now, epoch ms (uptime, list ages). */
  now: number;
}

/** The device's status (StatusSchema in status.ts): served on the status socket, read by `rc-device status`. */
export function buildStatus(p: StatusParts): RuntimeStatus {
  const d = p.config.device;
  let lists: RuntimeStatus['lists'] = [];
  let journal: RuntimeStatus['journal'] = { lastSeq: 0, ackedSeq: 0, backlog: 0 };
  try {
    lists = p.store.listStatus().map((l) => ({
      scope: l.scope,
      version: l.version,
      appliedAt: new Date(l.appliedMs).toISOString(),
      ageSec: Math.max(0, Math.round((p.now - l.appliedMs) / 1000)),
    }));
    journal = { lastSeq: p.store.lastSeq(), ackedSeq: p.store.ackedSeq(), backlog: p.store.journalBacklog() };
  } catch {
    // store closed (stopping): report what we have
  }
  return {
    device: {
      id: d.id,
      kind: d.kind,
      ...(d.route !== undefined ? { route: d.route } : {}),
      ...(d.vehicle !== undefined ? { vehicle: d.vehicle } : {}),
      ...(d.schoolId !== undefined ? { schoolId: d.schoolId } : {}),
      ...(d.partnerId !== undefined ? { partnerId: d.partnerId } : {}),
    },
    pid: process.pid,
    startedAt: p.startedAt.toISOString(),
    uptimeSec: Math.round((p.now - p.startedAt.getTime()) / 1000),
    state: p.state,
    pcsc: p.pcsc,
    readers: p.readers,
    peripherals: p.peripherals,
    lastTap: p.lastTap,
    taps: p.taps,
    lists,
    journal,
    sync: p.sync,
  };
}
