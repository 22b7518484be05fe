import { describe, expect, it } from 'vitest';
import { aclFileText, serverAclLines } from '../../sync-server/mosquitto-auth.js';
import { mqttFilterToSubjects, natsAuthorization, natsPermissions } from '../support/rig/cluster.js';

describe('Mosquitto ACL text as NATS permissions (the cluster rig, issue 16)', () => {
  it('topic filters become subjects; a trailing # also covers its parent level, as in MQTT', () => {
    expect(mqttFilterToSubjects('rc/v1/device/bus-1/journal')).toEqual(['rc.v1.device.bus-1.journal']);
    expect(mqttFilterToSubjects('rc/v1/config/+')).toEqual(['rc.v1.config.*']);
    expect(mqttFilterToSubjects('rc/v1/lists/school:7/#')).toEqual(['rc.v1.lists.school:7', 'rc.v1.lists.school:7.>']);
    expect(mqttFilterToSubjects('#')).toEqual(['>']);
  });

  it('a device may publish only its own topics and read its lists, its acks, configs and usage; QoS 1 deliveries need $MQTT.sub.>', () => {
    const p = natsPermissions(aclFileText('rc-sync-server', [{ id: 'bus-1', mosqHash: '', scopes: ['transit'] }])).get('bus-1')!;
    expect(p.publish.sort()).toEqual(['rc.v1.device.bus-1.journal', 'rc.v1.device.bus-1.request', 'rc.v1.device.bus-1.status']);
    expect(p.subscribe.sort()).toEqual(
      ['$MQTT.sub.>', 'rc.v1.config.*', 'rc.v1.device.bus-1.journal-ack', 'rc.v1.lists.transit', 'rc.v1.lists.transit.>', 'rc.v1.usage.*'].sort(),
    );
  });

  it("the server's split users get their purpose's topics; one server user gets everything under rc/v1", () => {
    const split = natsPermissions(
      aclFileText(
        [
          { user: 'srv-publisher', mosqHash: '', acl: serverAclLines('publisher') },
          { user: 'srv-ingest', mosqHash: '', acl: serverAclLines('ingest') },
        ],
        [],
      ),
    );
    expect(split.get('srv-publisher')!.publish).toContain('rc.v1.lists.>');
    expect(split.get('srv-publisher')!.subscribe).toEqual(['$MQTT.sub.>']);
    expect(split.get('srv-ingest')!.publish).toEqual(['rc.v1.device.*.journal-ack']);
    const one = natsPermissions(aclFileText('rc-sync-server', [])).get('rc-sync-server')!;
    expect(one.publish).toEqual(['rc.v1', 'rc.v1.>']);
  });

  it('a user without ACL lines may connect and nothing else (an empty NATS allow list would allow everything)', () => {
    const text = natsAuthorization([{ user: 'bus-9', password: 'pw' }], aclFileText('rc-sync-server', []));
    expect(text).toContain('{ user: "bus-9", password: "pw", permissions: { publish: { deny: [">"] }, subscribe: { allow: ["$MQTT.sub.>"] } } }');
  });

  it('an ACL line it does not understand is an error, not a silently open topic', () => {
    expect(() => natsPermissions('user x\npattern read rc/v1/%u/#\n')).toThrow(/not understood/);
  });
});
