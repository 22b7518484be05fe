import { createHash } from 'node:crypto';
import type { Logger } from '../protocol/log.js';
import { ROOT, parseTopic, topics } from '../protocol/wire/topics.js';
import type { AuthPolicy } from './broker.js';
import { verifyPassword, type DeviceRegistry } from './devices.js';

/**
 * The embedded broker's policy once devices are provisioned:
 *  - the server's own client: user `serverUser` with its password; may do anything;
 *  - a device: username = client id = its device id, its broker password
 *    (checked against the registry's scrypt hash), not revoked;
 *  - a device publishes only rc/v1/device/<its id>/{journal,status,request};
 *  - a device subscribes only to its own scopes' list topics
 *    (rc/v1/lists/<scope>/…), the shared rules documents (rc/v1/config/…),
 *    fleet usage (rc/v1/usage/{snapshot,delta}) and its own journal-ack topic;
 *  - anything else (anonymous, unknown, revoked, wrong password) is refused —
 *    unless `allowAnonymous` is set (development only): then a client without
 *    a username gets the old open rights (publish only its own device topics).
 */
export interface DevicePolicy extends AuthPolicy {
  /** Forget a device's session and cached password check (revoke, rotate). */
  forget(deviceId: string): void;
}

export function devicePolicy(
  reg: DeviceRegistry,
  serverUser: string,
  serverPassword: string,
  opts: { allowAnonymous?: boolean; log?: Logger } = {},
): DevicePolicy {
  const servers = new Set<string>();
  const anonymous = new Set<string>();
  const sessions = new Map<string, readonly string[]>(); // client id → scopes
  const verified = new Map<string, string>(); // device id → sha256(password ‖ stored hash), a cache for scrypt

  const deviceTopic = (clientId: string, topic: string) => {
    const t = parseTopic(topic);
    return t !== null && (t.kind === 'journal' || t.kind === 'status' || t.kind === 'request') && t.device === clientId;
  };

  return {
    async authenticate(clientId, username, password) {
      servers.delete(clientId);
      anonymous.delete(clientId);
      sessions.delete(clientId);
      if (username === serverUser) {
        const ok = password?.toString() === serverPassword;
        if (ok) servers.add(clientId);
        return ok;
      }
      if (username === undefined || username === '') {
        if (opts.allowAnonymous) anonymous.add(clientId);
        return opts.allowAnonymous === true;
      }
      if (username !== clientId || !password) return false;
      const d = reg.get(username);
      if (!d || d.revokedAt) {
        opts.log?.warn({ device: username, revoked: !!d?.revokedAt }, 'broker refused unknown or revoked device');
        return false;
      }
      const pw = password.toString('utf8');
      const key = createHash('sha256').update(pw).update('\0').update(d.pwHash).digest('hex');
      if (verified.get(d.id) !== key) {
        if (!(await verifyPassword(pw, d.pwHash))) {
          opts.log?.warn({ device: d.id }, 'broker refused a wrong device password');
          return false;
        }
        verified.set(d.id, key);
      }
      // revoked while scrypt ran?
      if (reg.get(d.id)?.revokedAt) return false;
      sessions.set(clientId, d.scopes);
      return true;
    },
    canPublish(clientId, topic) {
      if (servers.has(clientId)) return true;
      if (sessions.has(clientId) || anonymous.has(clientId)) return deviceTopic(clientId, topic);
      return false;
    },
    canSubscribe(clientId, filter) {
      if (servers.has(clientId)) return true;
      if (anonymous.has(clientId)) return true;
      const scopes = sessions.get(clientId);
      if (!scopes) return false;
      if (filter === topics.journalAck(clientId)) return true;
      if (filter === topics.usageSnapshot() || filter === topics.usageDelta()) return true; // fleet usage (issue 10 item 4)
      const p = filter.split('/');
      if (`${p[0]}/${p[1]}` !== ROOT) return false;
      if (p[2] === 'config' && p.length === 4) return p[3] === '+' || /^[a-z0-9_-]{1,64}$/.test(p[3] ?? '');
      if (p[2] === 'lists' && p.length >= 5) return scopes.includes(p[3] ?? '');
      return false;
    },
    forget(deviceId) {
      sessions.delete(deviceId);
      verified.delete(deviceId);
    },
  };
}
