import type { KeyObject } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { ErrorCode, RcError, isRcError } from '../../protocol/errors.js';
import type { Logger } from '../../protocol/log.js';
import { DeviceStatus, JournalBatch, MAX_CONTROL_MESSAGE, SyncRequest } from '../../protocol/wire/messages.js';
import { parseTopic, topics } from '../../protocol/wire/topics.js';
import { parseControl } from '../../protocol/wire/verify.js';
import { sealJournalAck } from '../../protocol/wire/chunking.js';
import type { ChargingQueue } from '../charging.js';
import { recordStatus } from '../console/store.js';
import type { Provisioning } from '../enrol.js';
import { Ingest } from '../ingest.js';
import type { ServerMetrics } from '../metrics.js';
import type { Db } from '../registry.js';
import { RequestPolicy } from '../requests.js';
import type { ServerOptions } from '../server.js';
import type { Leadership } from './leader.js';
import type { Lists } from './lists.js';

/**
 * What devices send over MQTT, on the ingest client (start/broker.ts subscribes it): journal uploads (stored, then
 * a signed journal-ack), status reports, and list requests (answered within what requests.ts allows).
 */
export function startIngest(
  client: MqttClient,
  o: Pick<ServerOptions, 'settlement' | 'ingestLimits' | 'usageIntervalMs'>,
  deps: {
    db: Db;
    key: KeyObject;
    lists: Lists;
    charging: ChargingQueue;
    provisioning: Provisioning;
    metrics: ServerMetrics;
    leader: Leadership;
    log: Logger;
  },
): Ingest {
  const { db, key, lists, charging, provisioning, metrics, leader, log } = deps;
  const { publisher, usage, serial } = lists;
  const ingest = new Ingest(db, o.settlement, o.ingestLimits, 'group'); // acks wait for a shared fsync (ingest.ts GroupCommit)
  const usageOn = o.usageIntervalMs !== 0; // start/timers.ts: no usage timer, no fleet usage
  const requests = new RequestPolicy(
    (id) => provisioning.registry.get(id)?.scopes ?? null,
    () => publisher.scopes(),
  );
  client.on('message', (topic, payload) => {
    const t = parseTopic(topic);
    if (!t || !('device' in t)) return;
    try {
      if (t.kind === 'journal') {
        const batch = parseControl(payload, JournalBatch, MAX_CONTROL_MESSAGE);
        const device = t.device;
        // stored with the other uploads of this turn in one transaction; resolved once on disk (ingest.ts submit, GroupCommit)
        ingest.submit(device, batch).then(
          (r) => {
            metrics.taps.inc(r.stored);
            if (r.limited > 0)
              log.warn(
                { device, code: ErrorCode.ServerRateLimited, limited: r.limited },
                'journal entries over the device rate: not stored, the device resends them',
              );
            const ack = sealJournalAck(device, r.upTo, new Date(), key); // signed: devices refuse an unsigned ack
            void client.publishAsync(topics.journalAck(device), ack, { qos: 1, retain: true }).catch(() => undefined);
            // leader only (start/leader.ts): a follower's uploads are settled by the leader's charging timer, their usage at its next tick
            if (!leader.isLeader()) return;
            if (r.settle > 0) charging.kick(); // settled later, in short slices: the ack above never waits for it
            if (r.stored > 0 && usageOn) usage.soon(); // fleet usage right after the ack, not at the next tick
          },
          (e: unknown) => {
            if (isRcError(e)) log.warn({ code: e.code, topic, err: e.message }, 'message refused');
            else log.error({ err: String(e), topic }, 'journal not stored or not synced to disk: not acknowledged');
          },
        );
      } else if (t.kind === 'status') {
        if (payload.length === 0) return;
        const s = parseControl(payload, DeviceStatus, MAX_CONTROL_MESSAGE);
        if (s.device !== t.device) throw new RcError(ErrorCode.SyncDeviceMismatch, 'status device id does not match its topic', { topic: t.device });
        ingest.status(s);
        recordStatus(db, s); // the console's status history
      } else if (t.kind === 'request') {
        if (!leader.isLeader()) return; // every instance gets the requests (start/broker.ts ingestTopics): the leader answers
        const r = parseControl(payload, SyncRequest, MAX_CONTROL_MESSAGE);
        if (r.device !== t.device) throw new RcError(ErrorCode.SyncDeviceMismatch, 'request device id does not match its topic', { topic: t.device });
        const { scopes, refused } = requests.admit(t.device, r.scopes, Date.now());
        if (refused) log.debug({ device: t.device, scopes: r.scopes, refused }, 'list request not answered');
        if (scopes.length) void serial(() => publisher.publishManifests(scopes)).catch(() => undefined);
      }
    } catch (e) {
      if (isRcError(e)) log.warn({ code: e.code, topic, err: e.message }, 'message refused');
      else log.error({ err: String(e), topic }, 'message handling failed');
    }
  });
  return ingest;
}
