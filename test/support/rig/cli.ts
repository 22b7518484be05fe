import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { collect, type Collected } from '../collect.js';
import { PROJECT_ROOT } from './vcards.js';

export type CliResult = Collected;

const CLI = join(PROJECT_ROOT, 'device', 'cli.ts');
const live = new Set<ChildProcess>();
let hooked = false;

/** Spawn `rc-device ARGS` (from source, through tsx) and keep track of it for cleanup. */
export function spawnDevice(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Run `rc-device ARGS` to completion, capturing stdout and stderr; rejects (the process killed) after `timeoutMs`. */
export function runDevice(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 150_000): Promise<CliResult> {
  return collect(spawnDevice(args, env), timeoutMs, `rc-device ${args[0] ?? ''} to exit`);
}

/** Start `rc-device vcard` on a vpcd port; resolves once the card is in the field. */
export async function startVcardProcess(
  port: number,
  spec: unknown,
  env: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess; output: () => string; stop: () => Promise<void> }> {
  const child = spawnDevice(['vcard', '--port', String(port), '--spec', JSON.stringify(spec)], env);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`rc-device vcard did not start: ${out}`)), 30_000);
    const check = () => {
      if (out.includes('"event":"inserted"')) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`rc-device vcard exited ${code}: ${out}`));
    });
  });
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null) r();
    else child.once('exit', () => r());
  });
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}
