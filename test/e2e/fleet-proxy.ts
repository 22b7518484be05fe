/**
 * A fault-injecting TCP proxy between a device and its broker (this kernel has no netem):
 *  - 'pass': bytes flow both ways;
 *  - 'blackhole': nothing flows (both sides are paused: TCP back-pressure, like a dead link; bytes are
 *    delayed, never lost or reordered); new connections are accepted and held;
 *  - 'reset': every connection is destroyed at once, new ones are refused by an immediate reset.
 * restore() goes back to 'pass' and lets held bytes flow. Stopped by close(), also on failure.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode = 'pass' | 'blackhole' | 'reset';

interface Pair {
  down: Socket;
  up: Socket;
}

export class FaultProxy {
  private mode: ProxyMode = 'pass';
  private readonly pairs = new Set<Pair>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1', listenPort = 0): Promise<FaultProxy> {
    const server = createServer();
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(listenPort, '127.0.0.1', () => res());
    });
    const p = new FaultProxy(server, (server.address() as { port: number }).port, { host: targetHost, port: targetPort });
    server.on('connection', (s) => p.accept(s));
    return p;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get state(): ProxyMode {
    return this.mode;
  }

  /** Connections currently held open through the proxy. */
  get connections(): number {
    return this.pairs.size;
  }

  private accept(down: Socket): void {
    if (this.mode === 'reset') {
      down.resetAndDestroy();
      return;
    }
    down.setNoDelay(true);
    const up = connect({ ...this.target, noDelay: true });
    const pair: Pair = { down, up };
    this.pairs.add(pair);
    const end = () => {
      if (!this.pairs.delete(pair)) return;
      down.destroy();
      up.destroy();
    };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
    down.pipe(up);
    up.pipe(down);
    if (this.mode === 'blackhole') this.hold(pair);
  }

  private hold(p: Pair): void {
    p.down.unpipe(p.up);
    p.up.unpipe(p.down);
    p.down.pause();
    p.up.pause();
  }

  /** Cut the link: 'blackhole' (silence) or 'reset' (connections torn down, new ones refused). */
  cut(mode: Exclude<ProxyMode, 'pass'>): void {
    this.mode = mode;
    for (const p of [...this.pairs]) {
      if (mode === 'reset') {
        p.down.resetAndDestroy();
        p.up.destroy();
      } else this.hold(p);
    }
  }

  /** The link is back. */
  restore(): void {
    if (this.mode === 'blackhole')
      for (const p of this.pairs) {
        p.down.pipe(p.up);
        p.up.pipe(p.down);
      }
    this.mode = 'pass';
  }

  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.down.destroy();
      p.up.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
