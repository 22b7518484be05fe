import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../wait.js';

/**
 * A real serial pair from socat: two pty links, a and b; bytes written to one
 * come out of the other. remove() kills socat (both links vanish and open
 * ports see EIO, like a USB adapter pulled out); recreate() brings the same
 * link paths back on new ptys. close() kills socat by pid and deletes the dir;
 * call it in afterAll.
 */
export interface PtyPair {
  readonly a: string;
  readonly b: string;
  readonly dir: string;
  /** socat's pid while it runs. */
  pid(): number | undefined;
  remove(): Promise<void>;
  recreate(): Promise<void>;
  close(): Promise<void>;
}

export async function createPtyPair(opts: { dir?: string } = {}): Promise<PtyPair> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'rc-pty-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderr = '';

  const start = async (): Promise<void> => {
    stderr = '';
    const c = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = c;
    let gone = false;
    exited = new Promise<void>((resolve) => {
      c.once('exit', () => {
        gone = true;
        resolve();
      });
      c.once('error', (e) => {
        stderr += String(e);
        gone = true;
        resolve();
      });
    });
    c.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 10_000) stderr += d.toString();
    });
    try {
      const linked = () => gone || (existsSync(a) && existsSync(b) && stderr.includes('starting data transfer loop'));
      await waitFor(linked, { timeoutMs: 5000, what: 'socat pty links' });
    } catch (e) {
      await stop();
      throw e;
    }
    if (gone) throw new Error(`socat exited at start: ${stderr.trim()}`);
  };

  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c?.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
    // socat unlinks its links on a clean exit; make sure after a SIGKILL too
    rmSync(a, { force: true });
    rmSync(b, { force: true });
  };

  await start();
  return {
    a,
    b,
    dir,
    pid: () => child?.pid,
    remove: stop,
    recreate: async () => {
      await stop();
      await start();
    },
    close: async () => {
      await stop();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
