import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { MAX_MQTT_PACKET } from '../../../protocol/wire/mqtt-guard.js';
import { mqttFilterToSubjects, natsAuthorizationText, natsPermissions, type NatsUser } from '../../../sync-server/nats-auth.js';
import { waitFor } from '../wait.js';
import { freePort, waitPort } from './broker.js';

/**
 * A clustered MQTT broker for tests (issue 16): three `nats-server` processes, each with JetStream and
 * its MQTT listener, routed into one cluster (docs/cluster.md says why NATS and not RabbitMQ).
 * Config and JetStream stores live in a temp dir; every node is a child stopped by pid.
 *
 * Users and ACLs come from the Mosquitto ACL file text the server writes (sync-server/mosquitto-auth.ts
 * `aclFileText`), translated line by line into NATS subject permissions by the server's own
 * sync-server/nats-auth.ts, so the cluster enforces the very rules Mosquitto does, not a second list.
 * A test may instead let a server write the users: `authFile` is the file the nodes include and
 * `pidFiles` their pid files (rc-sync-server start --nats-auth / --nats-pid-file).
 */

export const NATS_BIN = process.env.RC_NATS_SERVER ?? 'nats-server';

/** Is nats-server installed? (tests skip outside CI when it is not) */
export function natsAvailable(): boolean {
  const r = spawnSync(NATS_BIN, ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

/** A user as the rig writes it: plain password (the server writes bcrypt hashes, sync-server/nats-auth.ts). */
export type ClusterUser = NatsUser;
// the translation lives in sync-server/nats-auth.ts: the server writes the deployment's users file with it, the rig its test file
export { mqttFilterToSubjects, natsPermissions };
export const natsAuthorization = natsAuthorizationText;

const q = (s: string) => JSON.stringify(s);

export interface ClusterNode {
  name: string;
  mqttPort: number;
  url: string;
  /** the node's process id while it runs */
  pid: number | null;
}

export interface RunningCluster {
  name: 'nats-cluster';
  nodes: ClusterNode[];
  /** one MQTT URL per node */
  urls: string[];
  /** each node's monitoring endpoint (`http://127.0.0.1:<port>`: /varz, /jsz, /healthz) */
  monitorUrls: string[];
  /** all nodes comma-separated, as the server's --broker takes them */
  url: string;
  /** kill -9 node i */
  kill(i: number): Promise<void>;
  /** start node i again on its ports and wait until it is back in the cluster and serves MQTT */
  restart(i: number): Promise<void>;
  /** replace users and ACLs on every running node (config rewritten, SIGHUP: NATS reloads authorization) */
  setAuth(users: readonly ClusterUser[], aclText: string): Promise<void>;
  /** the authorization file every node includes (a server started with --nats-auth may own it) */
  authFile: string;
  /** each node's pid file (its `pid_file`), for --nats-pid-file */
  pidFiles: string[];
  /** the node index an URL of this cluster belongs to */
  nodeOfUrl(url: string): number;
  close(): Promise<void>;
}

export interface NatsClusterOptions {
  users: readonly ClusterUser[];
  /** Mosquitto ACL file text (sync-server/mosquitto-auth.ts aclFileText) */
  aclText: string;
  /** how long to wait for the cluster to form (default 60 s: two shared cores) */
  formTimeoutMs?: number;
}

/** The rig's own user: may connect, nothing else; it probes that each node serves MQTT sessions. */
const PROBE: ClusterUser = { user: 'rc-rig-probe', password: 'rc-rig-probe-secret' };

async function httpOk(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return r.ok;
  } catch {
    return false;
  }
}

/** One MQTT session opened and closed on a node: JetStream's MQTT streams answer there. */
async function mqttSessionWorks(url: string): Promise<boolean> {
  return new Promise((res) => {
    const c = mqtt.connect(url, {
      protocolVersion: 4,
      clientId: `rc-rig-probe-${Math.random().toString(36).slice(2)}`,
      username: PROBE.user,
      password: PROBE.password,
      reconnectPeriod: 0,
      connectTimeout: 8000,
      clean: true,
    });
    const done = (ok: boolean) => {
      c.removeAllListeners();
      c.on('error', () => undefined);
      c.end(true);
      res(ok);
    };
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
    c.once('close', () => done(false));
  });
}

export async function startNatsCluster(o: NatsClusterOptions, nodeCount = 3): Promise<RunningCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'rc-nats-'));
  const formTimeoutMs = o.formTimeoutMs ?? 60_000;
  const ports: { client: number; route: number; mqtt: number; http: number }[] = [];
  for (let i = 0; i < nodeCount; i++) ports.push({ client: await freePort(), route: await freePort(), mqtt: await freePort(), http: await freePort() });
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.route}`).join(', ');
  const authFile = join(dir, 'auth.conf');
  const writeAuth = (users: readonly ClusterUser[], aclText: string) => writeFileSync(authFile, natsAuthorization([...users, PROBE], aclText), { mode: 0o600 });
  writeAuth(o.users, o.aclText);
  const nodes: ClusterNode[] = [];
  const children: (ChildProcess | null)[] = [];
  const logs: string[] = [];
  for (let i = 0; i < nodeCount; i++) {
    const p = ports[i]!;
    const name = `rc-n${i + 1}`;
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(
      join(dir, `${name}.conf`),
      [
        `server_name: ${name}`,
        `listen: 127.0.0.1:${p.client}`,
        `http: 127.0.0.1:${p.http}`,
        `max_payload: ${MAX_MQTT_PACKET}`,
        `jetstream { store_dir: ${q(join(dir, name))}, max_memory_store: 256MB, max_file_store: 2GB }`,
        `cluster { name: rc, listen: 127.0.0.1:${p.route}, routes: [${routes}] }`,
        // ack_wait: a QoS 1 message not acknowledged by its subscriber (the server) is sent again after this long.
        // consumer_replicas 1: each QoS 1 subscription is a JetStream consumer (the server's ingest; devices subscribe at QoS 0
        // and make none, device/sync/mqtt-transport.ts), and with the default (3, like the streams)
        // no QoS 1 subscription can be made while one of three nodes is down (an R3 consumer needs 3 live peers to be placed),
        // so a server failing over would get no journal uploads; our sessions are clean, the consumer only lives as long as
        // the connection (docs/cluster.md). The streams (retained messages, sessions, QoS 1 messages) stay replicated 3 times.
        `mqtt { listen: 127.0.0.1:${p.mqtt}, ack_wait: "30s", max_ack_pending: 1024, stream_replicas: ${Math.min(3, nodeCount)}, consumer_replicas: 1, consumer_memory_storage: true }`,
        `pid_file: ${q(join(dir, `${name}.pid`))}`,
        `include ./auth.conf`,
        '',
      ].join('\n'),
    );
    nodes.push({ name, mqttPort: p.mqtt, url: `mqtt://127.0.0.1:${p.mqtt}`, pid: null });
    children.push(null);
    logs.push('');
  }
  // safety net: never leave a node behind, even when a test times out before its afterAll could close it
  const onExit = () => children.forEach((c) => c?.kill('SIGKILL'));
  process.once('exit', onExit);

  const spawnNode = (i: number) => {
    const n = nodes[i]!;
    const c = spawn(NATS_BIN, ['-c', join(dir, `${n.name}.conf`)], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    logs[i] = '';
    c.stderr?.on('data', (d: Buffer) => (logs[i] = (logs[i]! + d.toString()).slice(-8000)));
    children[i] = c;
    n.pid = c.pid ?? null;
    c.once('exit', () => {
      if (children[i] === c) {
        children[i] = null;
        n.pid = null;
      }
    });
  };
  const ready = async (i: number) => {
    const p = ports[i]!;
    const n = nodes[i]!;
    try {
      await waitPort(p.mqtt, formTimeoutMs);
      // JetStream current on this node (meta leader known, streams caught up)
      await waitFor(() => httpOk(`http://127.0.0.1:${p.http}/healthz`), { timeoutMs: formTimeoutMs, everyMs: 250, what: `${n.name}: JetStream healthy` });
      await waitFor(() => mqttSessionWorks(n.url), { timeoutMs: formTimeoutMs, everyMs: 500, what: `${n.name}: an MQTT session opens` });
    } catch (e) {
      throw new Error(`NATS node ${n.name} not ready: ${(e as Error).message}\n${logs[i]}`, { cause: e });
    }
  };
  const down = async (i: number) => {
    const c = children[i];
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((res) => {
      c.once('exit', () => res());
      c.kill('SIGKILL');
    });
  };
  const close = async () => {
    for (let i = 0; i < nodeCount; i++) await down(i);
    process.removeListener('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (let i = 0; i < nodeCount; i++) spawnNode(i);
    // the cluster: every node routed to the others
    for (let i = 0; i < nodeCount; i++) {
      const p = ports[i]!;
      await waitFor(
        async () => {
          try {
            const r = await fetch(`http://127.0.0.1:${p.http}/routez`, { signal: AbortSignal.timeout(2000) });
            return ((await r.json()) as { num_routes: number }).num_routes >= nodeCount - 1;
          } catch {
            return false;
          }
        },
        { timeoutMs: formTimeoutMs, everyMs: 250, what: `${nodes[i]!.name}: routes to the ${nodeCount - 1} other nodes` },
      );
    }
    for (let i = 0; i < nodeCount; i++) await ready(i);
  } catch (e) {
    await close();
    throw e;
  }

  const urls = nodes.map((n) => n.url);
  return {
    name: 'nats-cluster',
    nodes,
    urls,
    url: urls.join(','),
    monitorUrls: ports.map((p) => `http://127.0.0.1:${p.http}`),
    kill: down,
    authFile,
    pidFiles: nodes.map((n) => join(dir, `${n.name}.pid`)),
    async restart(i) {
      if (children[i]) return;
      spawnNode(i);
      await ready(i);
    },
    async setAuth(users, aclText) {
      writeAuth(users, aclText);
      for (const c of children) c?.kill('SIGHUP');
      // the reload is asynchronous; a fresh probe session on every node shows it is done with the file
      for (let i = 0; i < nodeCount; i++) if (children[i]) await ready(i);
    },
    nodeOfUrl(url) {
      return urls.indexOf(url);
    },
    close,
  };
}
