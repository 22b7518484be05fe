import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../wait.js';
import { Aedes } from 'aedes';
import { MAX_MQTT_PACKET } from '../../../protocol/wire/mqtt-guard.js';

/**
 * MQTT brokers for tests, each on a free loopback port, stoppable and
 * restartable on the same port (fault tests):
 *  - aedesRig: a standalone aedes in this process (the engine the server embeds)
 *  - mosquittoRig: a real `mosquitto -c <tmp conf>` child, stopped by pid
 */
export interface RunningBroker {
  name: string;
  url: string;
  port: number;
  stop(): Promise<void>; // kill (SIGKILL for mosquitto)
  restart(): Promise<void>; // start again on the same port
  close(): Promise<void>; // stop for good, remove temp files
}

export interface BrokerRig {
  name: 'aedes' | 'mosquitto';
  start(): Promise<RunningBroker>;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

export async function waitPort(port: number, timeoutMs = 10_000): Promise<void> {
  const listening = () =>
    new Promise<boolean>((res) => {
      const c = createConnection({ port, host: '127.0.0.1' });
      c.once('connect', () => {
        c.destroy();
        res(true);
      });
      c.once('error', () => res(false));
    });
  await waitFor(listening, { timeoutMs, what: `port ${port} to open`, everyMs: 50 });
}

export const aedesRig: BrokerRig = {
  name: 'aedes',
  async start() {
    const port = await freePort();
    let stopFn: (() => Promise<void>) | null = null;
    const up = async () => {
      const aedes = await Aedes.createBroker();
      const server = createServer(aedes.handle);
      const sockets = new Set<import('node:net').Socket>();
      server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      await new Promise<void>((res, rej) => {
        server.once('error', rej);
        server.listen(port, '127.0.0.1', () => res());
      });
      stopFn = () =>
        new Promise<void>((res) => {
          for (const s of sockets) s.destroy();
          server.close(() => aedes.close(() => res()));
        });
    };
    await up();
    return {
      name: 'aedes',
      url: `mqtt://127.0.0.1:${port}`,
      port,
      stop: async () => {
        await stopFn?.();
        stopFn = null;
      },
      restart: up,
      close: async () => {
        await stopFn?.();
        stopFn = null;
      },
    };
  },
};

/** Mosquitto as deployed (docs/provisioning.md): packets bounded like the embedded broker's. */
export const mosquittoRig: BrokerRig = {
  name: 'mosquitto',
  async start() {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'rc-mosq-'));
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\nmax_inflight_messages 100\nmax_packet_size ${MAX_MQTT_PACKET}\nset_tcp_nodelay true\n`,
    );
    let child: ChildProcess | null = null;
    // safety net: never leave a mosquitto behind, even when a test times out before its afterAll could close it
    const onExit = () => child?.kill('SIGKILL');
    process.once('exit', onExit);
    const up = async () => {
      const c = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child = c;
      try {
        await waitPort(port);
      } catch (e) {
        c.kill('SIGKILL');
        throw new Error(`mosquitto did not start: ${err}`, { cause: e });
      }
    };
    const down = async () => {
      const c = child;
      child = null;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((res) => {
        c.once('exit', () => res());
        c.kill('SIGKILL');
      });
    };
    await up();
    return {
      name: 'mosquitto',
      url: `mqtt://127.0.0.1:${port}`,
      port,
      stop: down,
      restart: up,
      close: async () => {
        await down();
        process.removeListener('exit', onExit);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/**
 * Mosquitto as docs/provisioning.md sets it up for the server to manage: empty password and ACL files in `dir` (the
 * server fills them and SIGHUPs Mosquitto through `dir/mosquitto.pid`), no anonymous clients, one listener on `port`.
 * `extra`: more lines for its config. Returns the child at once (track it, then `waitPort(port)`).
 */
export function spawnFileMosquitto(dir: string, port: number, extra: readonly string[] = []): ChildProcess {
  const f = (n: string) => join(dir, n);
  writeFileSync(f('passwd'), '', { mode: 0o640 });
  writeFileSync(f('acl'), '', { mode: 0o640 });
  writeFileSync(
    f('mosquitto.conf'),
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous false',
      `password_file ${f('passwd')}`,
      `acl_file ${f('acl')}`,
      `pid_file ${f('mosquitto.pid')}`,
      'persistence false',
      `max_packet_size ${MAX_MQTT_PACKET}`,
      'set_tcp_nodelay true',
      ...extra,
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      '',
    ].join('\n'),
  );
  return spawn('mosquitto', ['-c', f('mosquitto.conf')], { stdio: 'ignore' });
}
