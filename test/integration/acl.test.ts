import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../protocol/wire/topics.js';
import { loadDevice } from '../../provisioning/device-dir.js';
import { initDevice } from '../../provisioning/ops.js';
import { closedWithin, connectAs, startProvStack, type ProvMode, type ProvStack } from '../support/provision-rig.js';
import { waitFor } from '../support/wait.js';

interface Dev {
  id: string;
  password: string;
}

/** Resolves once the broker has handled everything `c` sent so far: it dropped `c`, or acknowledged a QoS 1 publish sent after it. */
async function handled(c: MqttClient, own: Dev): Promise<void> {
  if (!c.connected) return;
  const closed = new Promise<void>((res) => c.once('close', () => res()));
  const acked = c.publishAsync(topics.journal(own.id), Buffer.from(JSON.stringify({ device: own.id, entries: [] })), { qos: 1 }).then(
    () => undefined,
    () => undefined,
  );
  await Promise.race([closed, acked]);
}

/** Resolves once `c` received a marker it published itself on `topic` (which it subscribes): everything routed to it before has arrived. */
async function roundTrip(c: MqttClient, topic: string): Promise<void> {
  const marker = `barrier-${Math.random().toString(36).slice(2)}`;
  const got = new Promise<void>((res) => {
    const on = (_t: string, p: Buffer) => {
      if (p.toString() !== marker) return;
      c.off('message', on);
      res();
    };
    c.on('message', on);
  });
  await c.publishAsync(topic, Buffer.from(marker), { qos: 1 });
  await got;
}

/**
 * Broker rights of provisioned devices, the same suite on the server's embedded
 * aedes and on a real Mosquitto running on the password/ACL files the server writes.
 */
describe.each<ProvMode>(['embedded', 'mosquitto'])('device rights on the %s broker', (mode) => {
  let stack: ProvStack;
  let base: string;
  let a: Dev; // turnstile of school 7
  let b: Dev; // turnstile of school 8
  let spy: MqttClient; // the server's credentials: sees everything
  const open: MqttClient[] = [];
  const seen: string[] = [];

  const enrol = async (school: string): Promise<Dev> => {
    const dir = join(base, `dev-${school}-${Math.random().toString(36).slice(2)}`);
    const r = await initDevice({
      server: stack.server.httpUrl,
      token: stack.token('turnstile', { school }).token,
      kind: 'turnstile',
      school,
      direction: 'entry',
      dir,
    });
    return { id: r.deviceId, password: loadDevice(dir).config.sync!.password! };
  };
  const connect = async (d: Dev, clientId = d.id, password = d.password) => {
    const c = await connectAs(stack.brokerUrl, clientId, d.id, password);
    open.push(c);
    return c;
  };

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rc-acl-'));
    stack = await startProvStack(mode);
    a = await enrol('7');
    b = await enrol('8');
    // Mosquitto reloads its password file on SIGHUP: wait until the last enrolled device may connect
    await waitFor(
      () =>
        connectAs(stack.brokerUrl, b.id, b.id, b.password).then((c) => {
          c.end(true);
          return true;
        }),
      { timeoutMs: 10_000, what: 'the broker to accept the enrolled devices', everyMs: 50 },
    );
    spy = await connectAs(stack.brokerUrl, 'acl-spy', stack.serverUser, stack.serverPassword);
    spy.on('message', (t) => seen.push(t));
    await spy.subscribeAsync(['rc/v1/device/+/journal', 'rc/v1/device/+/status'], { qos: 1 });
  });
  afterAll(async () => {
    for (const c of [...open, spy]) c?.end(true);
    await stack?.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('anonymous clients and wrong passwords are refused', async () => {
    await expect(connectAs(stack.brokerUrl, 'anon-1')).rejects.toThrow(/Not authorized|Bad username/i);
    await expect(connectAs(stack.brokerUrl, a.id, a.id, 'not-the-password-xxxxxxxx')).rejects.toThrow(/Not authorized|Bad username/i);
    await expect(connectAs(stack.brokerUrl, 'x', 'rc-sync-server', 'guess')).rejects.toThrow(/Not authorized|Bad username/i);
  });

  it("a device receives its own school's list but nothing of another school's, whatever filter it subscribes", async () => {
    const c = await connect(a);
    const got: string[] = [];
    c.on('message', (t) => got.push(t));
    await c
      .subscribeAsync(['rc/v1/lists/school:8/manifest', 'rc/v1/lists/+/manifest', 'rc/v1/#', 'rc/v1/lists/school:7/manifest'], { qos: 1 })
      .catch(() => undefined);
    await spy.publishAsync('rc/v1/lists/school:8/manifest', Buffer.from('other school'), { qos: 1 });
    await spy.publishAsync('rc/v1/lists/school:7/manifest', Buffer.from('own school'), { qos: 1 });
    await spy.publishAsync(topics.journalAck(b.id), Buffer.from('{}'), { qos: 1 });
    // a last message for the device, delivered after the others: once it is in, any forbidden one would be too
    const last = new Promise<void>((res) => c.on('message', (_t, p) => p.toString() === 'last' && res()));
    await spy.publishAsync('rc/v1/lists/school:7/manifest', Buffer.from('last'), { qos: 1 });
    await last;
    expect(got).toContain('rc/v1/lists/school:7/manifest');
    expect(got.filter((t) => t.includes('school:8'))).toEqual([]);
    expect(got).not.toContain(topics.journalAck(b.id));
  });

  it('a device cannot publish as another device; its own journal goes through', async () => {
    const c = await connect(a);
    seen.length = 0;
    await c.publishAsync(topics.journal(b.id), Buffer.from('{"device":"forged","entries":[]}'), { qos: 0 }).catch(() => undefined);
    await c.publishAsync(topics.status(b.id), Buffer.from('{}'), { qos: 0 }).catch(() => undefined);
    await handled(c, a);
    const c2 = c.connected ? c : await connect(a); // aedes drops a client that publishes where it may not
    await c2.publishAsync(topics.journal(a.id), Buffer.from(JSON.stringify({ device: a.id, entries: [] })), { qos: 1 });
    await waitFor(() => seen.includes(topics.journal(a.id)), { timeoutMs: 5000, what: "the device's own journal at the server" });
    expect(seen).toContain(topics.journal(a.id));
    expect(seen.filter((t) => t.includes(b.id))).toEqual([]);
  });

  it("a device's credentials with another device's client id, or lists published by a device, get nowhere", async () => {
    if (mode === 'embedded') await expect(connectAs(stack.brokerUrl, b.id, a.id, a.password)).rejects.toThrow(/Not authorized/i);
    const c = await connect(a, `${a.id}`);
    const got: string[] = [];
    const s = await connectAs(stack.brokerUrl, 'acl-spy-2', stack.serverUser, stack.serverPassword);
    open.push(s);
    s.on('message', (_t, p) => got.push(p.toString()));
    await s.subscribeAsync('rc/v1/lists/#', { qos: 1 });
    await c.publishAsync('rc/v1/lists/school:7/manifest', Buffer.from('forged list'), { qos: 0 }).catch(() => undefined);
    await c.publishAsync('rc/v1/config/rules', Buffer.from('forged rules'), { qos: 0 }).catch(() => undefined);
    await handled(c, a);
    await roundTrip(s, 'rc/v1/lists/acl-barrier/manifest');
    expect(got.filter((p) => p.startsWith('forged'))).toEqual([]);
  });

  it('a revoked device is disconnected within a second and cannot come back', async () => {
    const c = await connect(b);
    const closed = closedWithin(c, 2000);
    stack.server.provisioning.revoke(b.id);
    expect(await closed).toBe(true);
    c.end(true);
    // Mosquitto learns of the revocation by a reload: wait until it refuses the device, then hold it to that
    await waitFor(
      () =>
        connectAs(stack.brokerUrl, b.id, b.id, b.password).then(
          (again) => {
            again.end(true);
            return false;
          },
          () => true,
        ),
      { timeoutMs: 10_000, what: 'the broker to refuse the revoked device', everyMs: 50 },
    );
    await expect(connectAs(stack.brokerUrl, b.id, b.id, b.password)).rejects.toThrow(/Not authorized|Bad username/i);
  });
});
