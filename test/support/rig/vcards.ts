import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VCardSpec } from '../../../device/vcard/spec.js';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const HOST = join(PROJECT_ROOT, 'test', 'support', 'rig', 'vcard-host.ts');

export type HostCardSpec = VCardSpec | { kind: 'rig-echo' };

const live = new Set<ChildProcess>();
let hooked = false;

/**
 * The test-side handle on the vcard host child (test/support/rig/vcard-host.ts):
 * inserts and removes virtual cards on vpcd slot ports. One child serves all
 * cards of a test file; it is stopped by pid in close() and on process exit.
 */
export class VcardHost {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private readonly closedWaiters = new Map<number, Array<() => void>>();
  private constructor(private readonly child: ChildProcess) {}

  static async start(env: NodeJS.ProcessEnv = process.env): Promise<VcardHost> {
    if (!hooked) {
      hooked = true;
      process.on('exit', () => {
        for (const c of live) c.kill('SIGKILL');
      });
    }
    const child = spawn(process.execPath, ['--import', 'tsx', HOST], { cwd: PROJECT_ROOT, stdio: ['pipe', 'pipe', 'pipe'], env });
    live.add(child);
    child.once('exit', () => live.delete(child));
    const host = new VcardHost(child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const ready = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`vcard host did not start: ${stderr}`)), 60_000);
      child.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`vcard host exited (${code}): ${stderr}`));
      });
      const rl = createInterface({ input: child.stdout! });
      rl.on('line', (line) => {
        let msg: { id?: number; ok?: boolean; error?: string; event?: string; port?: number };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          return;
        }
        if (msg.event === 'ready') {
          clearTimeout(t);
          resolve();
        } else if (msg.event === 'closed' && typeof msg.port === 'number') {
          const ws = host.closedWaiters.get(msg.port) ?? [];
          host.closedWaiters.delete(msg.port);
          ws.forEach((w) => w());
        } else if (typeof msg.id === 'number') {
          const p = host.pending.get(msg.id);
          host.pending.delete(msg.id);
          if (!p) return;
          if (msg.ok) p.resolve();
          else p.reject(new Error(`vcard host: ${msg.error ?? 'failed'}`));
        }
      });
    });
    await ready;
    return host;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private request(o: Record<string, unknown>): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin!.write(JSON.stringify({ id, ...o }) + '\n');
    });
  }

  /** Put a card in the field of the vpcd slot on `port` (resolves when connected to vpcd). */
  insert(port: number, spec: HostCardSpec): Promise<void> {
    return this.request({ op: 'insert', port, spec });
  }

  /** Take the card on `port` out of the field (resolves when its socket is closed). */
  remove(port: number): Promise<void> {
    return this.request({ op: 'remove', port });
  }

  /** Resolves when the card on `port` next loses its connection (removed itself, or vpcd went away). */
  whenClosed(port: number): Promise<void> {
    return new Promise((r) => {
      const ws = this.closedWaiters.get(port) ?? [];
      ws.push(r);
      this.closedWaiters.set(port, ws);
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}
