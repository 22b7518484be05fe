import QRCode from 'qrcode';
import type { JournalRow } from '../../protocol/api.js';
import type { DeviceDetail, FleetWire, JournalSearchBody, ListsAnswer, ConfigDoc, StopEntry } from '../../protocol/console-api.js';
import { ConfigBody } from '../../protocol/api.js';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import type { Scope } from '../../protocol/lists.js';
import type { Logger } from '../../protocol/log.js';
import type { TokenKey } from '../../protocol/token.js';
import type { TokenDeriver } from '../../protocol/token-hsm.js';
import type { Provisioning } from '../enrol.js';
import { markDirty, type Dirty } from '../materialize.js';
import type { Db } from '../registry.js';
import { tokeniseTyped } from './cards.js';
import { DEFAULT_FLEET_POLICY, deviceDetail, fleet, type FleetPolicy } from './fleet.js';
import { searchJournal } from './journal.js';
import { currentConfig, listsOverview } from './lists.js';

/** What the console's routes need from the running server (start/services.ts builds it with consoleApi). */
export interface ConsoleApi {
  fleet(policy: Partial<FleetPolicy>, school?: string): FleetWire;
  device(id: string, school?: string): DeviceDetail;
  lists(): ListsAnswer;
  config(name: string): ConfigDoc;
  validateConfig(name: string, rules: unknown): { ok: true; name: string };
  stopList(limit: number): { entries: StopEntry[]; total: number };
  stopAdd(
    pan: string,
    card: { expiry?: string | undefined; psn?: string | undefined },
    reason: string,
  ): Promise<{ masked: string; tokenPrefix: string; reason: string; since: string; version: number }>;
  stopRemove(token: string): Promise<{ removed: boolean; version: number }>;
  searchJournal(q: JournalSearchBody, devices?: readonly string[]): { entries: JournalRow[]; card: { masked: string; tokenPrefix: string } | null };
  enrolQr(body: unknown): Promise<{ token: string; id: string; kind: string; school: string | null; route: string | null; expiresAt: string; qrSvg: string }>;
  /** The ids of one school's devices (role school sees only these). */
  schoolDevices(school: string): string[];
}

export interface ConsoleDeps {
  db: Db;
  tokenKey: TokenKey | TokenDeriver;
  /** Commit the dirty scopes' new versions and publish them (serialised with imports, charging). */
  commitAndPublish(d: Dirty): Promise<Scope[]>;
  version(scope: string): number;
  provisioning: Provisioning;
  log: Logger;
  /** The operator's service day now (settlement's calendar): a stop-list entry's "since". */
  today(): string;
}

export function consoleApi(d: ConsoleDeps): ConsoleApi {
  const { db } = d;
  return {
    fleet: (p, school) => fleet(db, { ...DEFAULT_FLEET_POLICY, ...p }, { school }),
    device: (id, school) => deviceDetail(db, id, DEFAULT_FLEET_POLICY, { school }),
    lists: () => listsOverview(db),
    config: (name) => currentConfig(db, name),
    validateConfig: (name, rules) => {
      // the very schema POST /v1/config checks; nothing is stored
      const r = ConfigBody.safeParse({ name, rules });
      if (!r.success)
        throw new RcError(ErrorCode.ConfigInvalid, 'the rules document does not match the schema', {
          issues: r.error.issues.slice(0, 20).map((i) => `${i.path.join('.') || '(document)'}: ${i.message}`),
        });
      return { ok: true, name };
    },
    stopList: (limit) => {
      const rows = db
        .prepare(
          'SELECT s.token, s.reason, s.since, m.masked FROM stoplist s LEFT JOIN console_stop_masks m ON m.token = s.token ORDER BY s.since DESC, s.token LIMIT ?',
        )
        .all(limit) as { token: string; reason: string; since: string; masked: string | null }[];
      const total = db.prepare('SELECT count(*) FROM stoplist').pluck().get() as number;
      return { entries: rows.map((r) => ({ ...r, tokenPrefix: r.token.slice(0, 8) })), total };
    },
    stopAdd: async (pan, typed, reason) => {
      const card = tokeniseTyped(pan, typed, d.tokenKey);
      const since = d.today();
      const dirty: Dirty = new Map();
      db.transaction(() => {
        db.prepare('INSERT INTO stoplist(token, reason, since) VALUES (?,?,?) ON CONFLICT(token) DO UPDATE SET reason = excluded.reason').run(
          card.token,
          reason,
          since,
        );
        db.prepare('INSERT INTO console_stop_masks(token, masked) VALUES (?, ?) ON CONFLICT(token) DO UPDATE SET masked = excluded.masked').run(
          card.token,
          card.masked,
        );
      })();
      markDirty(dirty, 'stoplist', card.token);
      await d.commitAndPublish(dirty);
      d.log.info({ tokenPrefix: card.tokenPrefix, reason }, 'card stop-listed from the console');
      return { masked: card.masked, tokenPrefix: card.tokenPrefix, reason, since, version: d.version('stoplist') };
    },
    stopRemove: async (token) => {
      const removed = db.prepare('DELETE FROM stoplist WHERE token = ?').run(token).changes > 0;
      db.prepare('DELETE FROM console_stop_masks WHERE token = ?').run(token);
      if (removed) {
        const dirty: Dirty = new Map();
        markDirty(dirty, 'stoplist', token);
        await d.commitAndPublish(dirty);
        d.log.info({ tokenPrefix: token.slice(0, 8) }, 'card taken off the stop-list from the console');
      }
      return { removed, version: d.version('stoplist') };
    },
    searchJournal: (q, devices) => {
      const card = q.pan !== undefined ? tokeniseTyped(q.pan, { expiry: q.expiry, psn: q.psn }, d.tokenKey) : null;
      const entries = searchJournal(db, { ...q, token: card?.token, devices });
      return { entries, card: card ? { masked: card.masked, tokenPrefix: card.tokenPrefix } : null };
    },
    enrolQr: async (body) => {
      const t = d.provisioning.createToken(body);
      const qrSvg = await QRCode.toString(t.token, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      return { ...t, qrSvg };
    },
    schoolDevices: (school) => db.prepare('SELECT id FROM device_identities WHERE school = ? ORDER BY id').pluck().all(school) as string[],
  };
}
