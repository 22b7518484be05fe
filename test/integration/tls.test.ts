/**
 * Transport security (issue 13 item 9): the embedded broker's mqtts listener, the CA pinned at enrolment,
 * and the enrolment listener over https trusted through the CA pin the enrolment token carries.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { certPin, splitEnrolToken } from '../../protocol/tls-pin.js';
import { topics } from '../../protocol/wire/topics.js';
import { createMqttTransport } from '../../device/sync/mqtt-transport.js';
import type { TransportParams } from '../../device/sync/transport.js';
import { loadDevice } from '../../provisioning/device-dir.js';
import { initDevice } from '../../provisioning/ops.js';
import { loadTls, tlsInit, type TlsInitResult } from '../../sync-server/tls.js';
import { expectRcError } from '../support/errors.js';
import { startProvStack, type ProvStack } from '../support/provision-rig.js';

/** Connect as the device would; resolves 'connected', or the first error the transport reports. */
function tryConnect(
  p: Omit<TransportParams, 'will'>,
  onConnected?: (t: ReturnType<typeof createMqttTransport>) => Promise<void>,
  onMessage: (topic: string) => void = () => undefined,
): Promise<'connected' | Error> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: 'connected' | Error) => {
      if (done) return;
      done = true;
      void t.close().then(() => resolve(v));
    };
    const t = createMqttTransport(
      { ...p, will: { topic: topics.status(p.clientId), payload: Buffer.from('{}') } },
      {
        connect: () =>
          void (onConnected ? onConnected(t) : Promise.resolve()).then(
            () => finish('connected'),
            (e: Error) => finish(e),
          ),
        message: (topic) => onMessage(topic),
        close: () => setTimeout(() => finish(new Error('closed without a TLS error')), 500),
        error: (e) => finish(e),
      },
    );
  });
}

describe('TLS: mqtts on the embedded broker, CA pinned at enrolment, https enrolment pinned by the token', () => {
  let base: string;
  let pki: TlsInitResult;
  let other: TlsInitResult;
  let stack: ProvStack;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rc-tls-'));
    pki = tlsInit(join(base, 'pki'), ['127.0.0.1', 'localhost']);
    other = tlsInit(join(base, 'impostor'), ['127.0.0.1', 'localhost']);
    const material = loadTls({ cert: pki.cert, key: pki.key, ca: pki.caCert });
    stack = await startProvStack('embedded', {
      brokerTls: { listen: { host: '127.0.0.1', port: 0 }, material },
      enrolListen: { host: '127.0.0.1', port: 0 },
      enrolTls: material,
    });
  });
  afterAll(async () => {
    await stack?.close();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('tls init writes a CA and a server certificate for the names given, keys 0600, and never overwrites', () => {
    expect(statSync(pki.caKey).mode & 0o777).toBe(0o600);
    expect(statSync(pki.key).mode & 0o777).toBe(0o600);
    expect(pki.caPin).toBe(certPin(readFileSync(pki.caCert, 'utf8')));
    expectRcError(() => tlsInit(join(base, 'pki'), ['127.0.0.1']), ErrorCode.ServerTlsInit);
    expectRcError(() => tlsInit(join(base, 'bad-san'), ['not a name']), ErrorCode.ServerTlsInit);
  });

  it('a missing file, a key of another certificate or a certificate of another CA is server.tls-files', () => {
    expect(expectRcError(() => loadTls({ cert: join(base, 'nope.crt'), key: pki.key, ca: pki.caCert }), ErrorCode.ServerTlsFiles).context).toMatchObject({
      what: 'certificate',
    });
    expect(expectRcError(() => loadTls({ cert: pki.cert, key: other.key, ca: pki.caCert }), ErrorCode.ServerTlsFiles).message).toContain('does not belong');
    expect(expectRcError(() => loadTls({ cert: pki.cert, key: pki.key, ca: other.caCert }), ErrorCode.ServerTlsFiles).message).toContain(
      'not signed by the CA',
    );
    const junk = join(base, 'junk.pem');
    writeFileSync(junk, 'hello');
    chmodSync(junk, 0o600);
    expectRcError(() => loadTls({ cert: junk, key: pki.key, ca: pki.caCert }), ErrorCode.ServerTlsFiles);
    expectRcError(() => loadTls({ cert: pki.cert }), ErrorCode.ServerTlsFiles);
  });

  it('the enrolment token pins the CA, devices get the mqtts URL, and a device enrolled over https syncs over mqtts', async () => {
    const t = stack.token('turnstile', { school: '7' });
    expect(splitEnrolToken(t.token).pin).toBe(pki.caPin);
    expect(stack.server.enrolUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(stack.server.publicBrokerUrl).toBe(stack.server.mqttsUrl);
    const dir = join(base, 'dev-a');
    const r = await initDevice({ server: stack.server.enrolUrl!, token: t.token, kind: 'turnstile', school: '7', direction: 'entry', dir });
    expect(r.brokerUrl).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const d = loadDevice(dir);
    expect(d.config.sync?.ca).toBe(readFileSync(pki.caCert, 'utf8'));
    expect(d.record.serverCa?.trim()).toBe(readFileSync(pki.caCert, 'utf8').trim());
    const s = d.config.sync!;
    // the device's own credentials over mqtts: the server's retained rules document reaches it
    let ackSeen: () => void = () => undefined;
    const acked = new Promise<void>((res) => (ackSeen = res));
    const got = await tryConnect(
      { brokerUrl: s.brokerUrl, clientId: r.deviceId, username: s.username!, password: s.password!, tls: { ca: s.ca! } },
      async (tr) => {
        await tr.subscribe(['rc/v1/config/+']);
        await acked;
      },
      (topic) => topic === 'rc/v1/config/rules' && ackSeen(),
    );
    expect(got).toBe('connected');
    // later signed calls go to the same https listener, trusting the CA kept at enrolment
    const { whoAmI } = await import('../../provisioning/ops.js');
    expect((await whoAmI(loadDevice(dir))).deviceId).toBe(r.deviceId);
  });

  it('a broker whose certificate another CA signed is refused with sync.tls-untrusted, before any credentials go to it', async () => {
    const got = await tryConnect({
      brokerUrl: stack.server.mqttsUrl!,
      clientId: 'turnstile-x',
      username: 'turnstile-x',
      password: 'p'.repeat(20),
      tls: { ca: readFileSync(other.caCert, 'utf8') },
    });
    expect(got).toBeInstanceOf(RcError);
    expect((got as RcError).code).toBe(ErrorCode.SyncTlsUntrusted);
    // and a certificate for another name than the one the device dials
    const port = new URL(stack.server.mqttsUrl!).port;
    const named = await tryConnect({
      brokerUrl: `mqtts://127.0.0.1:${port}`,
      clientId: 'x',
      tls: { ca: readFileSync(pki.caCert, 'utf8'), servername: 'broker.example' },
    });
    expect((named as RcError).code).toBe(ErrorCode.SyncTlsUntrusted);
  });

  it('an enrolment server without a certificate of the pinned CA gets nothing: provision.tls-pin-mismatch, the token stays unspent', async () => {
    const t = stack.token('bus', { route: '7' });
    let requests = 0;
    const impostor: Server = createHttpsServer(
      { cert: readFileSync(other.cert, 'utf8') + readFileSync(other.caCert, 'utf8'), key: readFileSync(other.key, 'utf8') },
      (_q, res) => {
        requests++;
        res.end('{}');
      },
    );
    await new Promise<void>((res) => impostor.listen(0, '127.0.0.1', () => res()));
    try {
      const url = `https://127.0.0.1:${(impostor.address() as { port: number }).port}`;
      await expectRcError(initDevice({ server: url, token: t.token, kind: 'bus', route: '7', dir: join(base, 'dev-b') }), ErrorCode.ProvisionTlsPin);
      expect(requests).toBe(0);
      // plain http with a pinned token: refused before connecting
      await expectRcError(
        initDevice({ server: stack.server.httpUrl, token: t.token, kind: 'bus', route: '7', dir: join(base, 'dev-b') }),
        ErrorCode.ProvisionTlsPin,
      );
      // the real server: the same token still works
      const r = await initDevice({ server: stack.server.enrolUrl!, token: t.token, kind: 'bus', route: '7', vehicle: 'A1', dir: join(base, 'dev-b') });
      expect(r.deviceId).toMatch(/^bus-/);
    } finally {
      impostor.close();
    }
  });
});
