import type { ChildProcess } from 'node:child_process';

/** What a child process wrote and how it ended. */
export interface Collected {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const tail = (s: string, n = 2000) => (s.length > n ? `…${s.slice(-n)}` : s);

/**
 * The one output-collecting child runner of the tests: gather a just-spawned child's stdout and
 * stderr (spawned with `stdio: [..., 'pipe', 'pipe']`) until it exits. The wait is bounded: a child
 * still running after `timeoutMs` is killed (SIGKILL) and the promise rejects, naming `what` it
 * waited for and quoting the end of the output. A child that cannot be spawned rejects too.
 */
export function collect(child: ChildProcess, timeoutMs: number, what = `${child.spawnfile} to exit`): Promise<Collected> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(t);
      reject(new Error(`${what}: could not run ${child.spawnfile}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(t);
      if (timedOut)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (pid ${child.pid}, killed)\nstdout: ${tail(stdout)}\nstderr: ${tail(stderr)}`));
      else resolve({ code, signal, stdout, stderr });
    });
  });
}
