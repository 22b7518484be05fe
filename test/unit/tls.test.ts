import { describe, expect, it } from 'vitest';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { EnrolTokenPinned } from '../../protocol/enrol.js';
import { splitEnrolToken } from '../../protocol/tls-pin.js';
import { SyncConfig } from '../../device/config/schema.js';
import { tlsError } from '../../device/sync/mqtt-transport.js';
import { aclFileText, passwordFileText, serverAclLines, serverBrokerUsers } from '../../sync-server/mosquitto-auth.js';

const PIN = 'LO8pghm6MuH-cbuIJHxqHnnT3TnGn2aRF5zQflMg2vI';
const TOKEN = 'rce_' + 'a'.repeat(32);

describe('transport security, pure parts', () => {
  it('an enrolment token may carry a CA pin after a dot; only the part before it is the one-time token', () => {
    expect(EnrolTokenPinned.safeParse(`${TOKEN}.${PIN}`).success).toBe(true);
    expect(EnrolTokenPinned.safeParse(TOKEN).success).toBe(true);
    expect(EnrolTokenPinned.safeParse(`${TOKEN}.short`).success).toBe(false);
    expect(splitEnrolToken(`${TOKEN}.${PIN}`)).toEqual({ token: TOKEN, pin: PIN });
    expect(splitEnrolToken(TOKEN)).toEqual({ token: TOKEN, pin: null });
  });

  it('a device config pins a CA only for an mqtts:// broker', () => {
    const ca = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    expect(SyncConfig.safeParse({ brokerUrl: 'mqtts://10.0.0.5:8883', ca }).success).toBe(true);
    expect(SyncConfig.safeParse({ brokerUrl: 'mqtt://10.0.0.5:1883', ca }).success).toBe(false);
    expect(SyncConfig.safeParse({ brokerUrl: 'mqtts://10.0.0.5:8883', ca: 'not a pem' }).success).toBe(false);
  });

  it('certificate failures become sync.tls-untrusted; a refused connection stays what it is', () => {
    for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED']) {
      const e = tlsError(Object.assign(new Error(code), { code }), 'mqtts://x:8883');
      expect(e).toBeInstanceOf(RcError);
      expect((e as RcError).code).toBe(ErrorCode.SyncTlsUntrusted);
    }
    const refused = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    expect(tlsError(refused, 'mqtts://x:8883')).toBe(refused);
  });

  it("Mosquitto: the server's users per purpose, each with only its topics; passwords derived, distinct, stable", () => {
    const [pub, ingest] = serverBrokerUsers('rc-sync-server', 'secret');
    expect([pub!.user, ingest!.user]).toEqual(['rc-sync-server-publisher', 'rc-sync-server-ingest']);
    expect(pub!.password).not.toBe(ingest!.password);
    expect(serverBrokerUsers('rc-sync-server', 'secret')[0]!.password).toBe(pub!.password);
    expect(serverBrokerUsers('rc-sync-server', 'other')[0]!.password).not.toBe(pub!.password);
    const users = [
      { user: pub!.user, mosqHash: '$7$101$p$h', acl: serverAclLines('publisher') },
      { user: ingest!.user, mosqHash: '$7$101$i$h', acl: serverAclLines('ingest') },
    ];
    expect(passwordFileText(users, [])).toBe('rc-sync-server-publisher:$7$101$p$h\nrc-sync-server-ingest:$7$101$i$h\n');
    const acl = aclFileText(users, [{ id: 'bus-1', mosqHash: 'x', scopes: ['transit'] }]);
    expect(acl).toContain('user rc-sync-server-publisher\ntopic write rc/v1/lists/#\ntopic write rc/v1/config/#\ntopic write rc/v1/usage/#\n\n');
    expect(acl).toContain(
      'user rc-sync-server-ingest\ntopic read rc/v1/device/+/journal\ntopic read rc/v1/device/+/status\ntopic read rc/v1/device/+/request\ntopic write rc/v1/device/+/journal-ack\n\n',
    );
    expect(acl).not.toContain('readwrite');
    expect(acl).toContain('user bus-1\n');
  });
});
