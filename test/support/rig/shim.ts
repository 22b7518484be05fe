import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SHIM_SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'nodelay-shim.c');

/**
 * Build (once per source version, cached under the temp dir) the LD_PRELOAD
 * shim that sets TCP_NODELAY on the sockets pcscd accepts and ties pcscd's
 * life to its parent. Parallel test files may race to build it: each builds to
 * its own temp name and renames atomically.
 */
export function buildNodelayShim(): string {
  const src = readFileSync(SHIM_SOURCE);
  const hash = createHash('sha256').update(src).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'rc-rig-cache');
  const out = join(dir, `nodelay-shim-${hash}.so`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', tmp, SHIM_SOURCE, '-ldl'], { stdio: ['ignore', 'ignore', 'pipe'] });
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
  return out;
}
