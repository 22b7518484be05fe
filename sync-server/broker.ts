import { Aedes, type Client } from 'aedes';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { parseTopic } from '../protocol/wire/topics.js';
import { GuardedStream, MAX_CONNECT_PACKET, MAX_MQTT_PACKET } from '../protocol/wire/mqtt-guard.js';
import type { Logger } from '../protocol/log.js';

/**
 * The embedded MQTT broker (aedes, MQTT 3.1.1) with a pluggable policy.
 * Provisioning replaces `openPolicy` with per-device credentials and ACLs.
 */
export interface AuthPolicy {
  authenticate(clientId: string, username: string | undefined, password: Buffer | undefined): boolean | Promise<boolean>;
  canPublish(clientId: string, topic: string): boolean;
  canSubscribe(clientId: string, topic: string): boolean;
}

/**
 * Default policy until provisioning lands: anyone may connect and subscribe;
 * only the server's own client (user `serverUser` with its one-time password)
 * publishes lists, configs and acks; any other client publishes only on
 * rc/v1/device/<its own client id>/{journal,status,request}.
 */
export function openPolicy(serverUser: string, serverPassword: string): AuthPolicy {
  const servers = new Set<string>();
  return {
    authenticate(clientId, username, password) {
      if (username === serverUser) {
        const ok = password?.toString() === serverPassword;
        if (ok) servers.add(clientId);
        return ok;
      }
      servers.delete(clientId);
      return true;
    },
    canPublish(clientId, topic) {
      if (servers.has(clientId)) return true;
      const t = parseTopic(topic);
      return t !== null && (t.kind === 'journal' || t.kind === 'status' || t.kind === 'request') && t.device === clientId;
    },
    canSubscribe() {
      return true;
    },
  };
}

export interface EmbeddedBroker {
  /** The plain listener, on loopback only: the server's own client. */
  port: number;
  url: string;
  /** The TLS listener devices use (mqtts), when one was asked for. */
  tls: { host: string; port: number } | null;
  close(): Promise<void>;
  /** Drop a connected client at once (provisioning: a revoked device). */
  disconnect(clientId: string): void;
}

/** The device-facing mqtts listener: where, and the server certificate (PEM) it presents. */
export interface BrokerTlsListener {
  host: string;
  port: number;
  cert: string;
  key: string;
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(port, host, () => res());
  });
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : port;
}

/**
 * Plain TCP on loopback (the server's own client; `host` may widen it for development only) and,
 * with `tls`, MQTT over TLS where devices reach it (issue 13 item 9).
 */
export async function startEmbeddedBroker(opts: {
  port: number;
  host?: string;
  tls?: BrokerTlsListener;
  policy: AuthPolicy;
  log: Logger;
}): Promise<EmbeddedBroker> {
  const { policy, log } = opts;
  const aedes = await Aedes.createBroker({
    authenticate: (client: Client, username, password, done) => {
      Promise.resolve(policy.authenticate(client.id, username ?? undefined, password ?? undefined)).then(
        (ok) => {
          // only an authenticated client may send packets larger than a CONNECT
          if (ok) (client.conn as unknown as GuardedStream).authenticated?.();
          done(ok ? null : Object.assign(new Error('not authorised'), { returnCode: 5 as const }), ok);
        },
        () => done(Object.assign(new Error('auth failed'), { returnCode: 3 as const }), false),
      );
    },
    authorizePublish: (client, packet, cb) => {
      if (client && !policy.canPublish(client.id, packet.topic)) {
        log.warn({ client: client.id, topic: packet.topic }, 'publish refused by broker policy');
        return cb(new Error('publish not allowed'));
      }
      cb(null);
    },
    authorizeSubscribe: (client, sub, cb) => {
      // refused: SUBACK 0x80 for this filter (MQTT 3.1.1 §3.9.3), the connection stays up
      if (!policy.canSubscribe(client.id, sub.topic)) {
        log.warn({ client: client.id, topic: sub.topic }, 'subscribe refused by broker policy');
        return cb(null, null);
      }
      cb(null, sub);
    },
  });
  // Packet sizes are checked on the bytes, before aedes buffers what a header announces (aedes has no limit of its own).
  const handle = (socket: Socket) => {
    // TCP_NODELAY: acks, deltas and usage are small packets a device waits for; with Nagle's algorithm each waited for
    // the peer's delayed ACK (~40 ms a hop; MQTT round trip p50 73 ms → 2.8 ms measured on loopback, docs/sync.md)
    socket.setNoDelay(true);
    const guarded = new GuardedStream(socket, { connect: MAX_CONNECT_PACKET, packet: MAX_MQTT_PACKET }, (r) =>
      log.warn({ remote: socket.remoteAddress, ...r }, 'mqtt connection dropped: packet over the size limit'),
    );
    aedes.handle(guarded);
  };
  const server: Server = createServer(handle);
  const port = await listen(server, opts.port, opts.host ?? '127.0.0.1');
  let tlsServer: Server | null = null;
  let tlsAt: { host: string; port: number } | null = null;
  if (opts.tls) {
    const t = createTlsServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, handle);
    // a client that fails the handshake (wrong CA on its side, a scanner) is only logged
    t.on('tlsClientError', (e, socket) => log.debug({ remote: socket.remoteAddress, err: e.message }, 'mqtts handshake failed'));
    tlsServer = t;
    try {
      tlsAt = { host: opts.tls.host, port: await listen(t, opts.tls.port, opts.tls.host) };
    } catch (e) {
      server.close();
      throw e;
    }
  }
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    tls: tlsAt,
    disconnect: (clientId) => (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[clientId]?.close(),
    close: () =>
      new Promise<void>((res) => {
        tlsServer?.close();
        aedes.close(() => server.close(() => res()));
        // close() waits for clients; make sure sockets go
        setTimeout(res, 2000).unref();
      }),
  };
}
