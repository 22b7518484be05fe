import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Chunks of a snapshot being downloaded, one file per chunk, so an
 * interrupted download (broker gone, device restarted) resumes where it
 * stopped. Files are written to a temp name, fsynced, then renamed.
 */
export class ChunkStaging {
  constructor(private readonly dir: string) {}

  private scopeDir(scope: string): string {
    return join(this.dir, scope.replace(/[^A-Za-z0-9_-]/g, '_'));
  }

  private versionDir(scope: string, version: number): string {
    return join(this.scopeDir(scope), String(version));
  }

  /** Chunk numbers already on disk for this version. */
  have(scope: string, version: number): number[] {
    try {
      return readdirSync(this.versionDir(scope, version))
        .filter((f) => /^\d+\.chunk$/.test(f))
        .map((f) => Number(f.slice(0, -6)));
    } catch {
      return [];
    }
  }

  put(scope: string, version: number, n: number, payload: Uint8Array): void {
    const d = this.versionDir(scope, version);
    mkdirSync(d, { recursive: true });
    const tmp = join(d, `${n}.tmp`);
    writeFileSync(tmp, payload);
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(d, `${n}.chunk`));
  }

  get(scope: string, version: number, n: number): Buffer {
    return readFileSync(join(this.versionDir(scope, version), `${n}.chunk`));
  }

  drop(scope: string, version: number): void {
    rmSync(this.versionDir(scope, version), { recursive: true, force: true });
  }

  /** Remove every staged version of the scope except `keep`. */
  dropOthers(scope: string, keep: number): void {
    let vs: string[];
    try {
      vs = readdirSync(this.scopeDir(scope));
    } catch {
      return;
    }
    for (const v of vs) if (v !== String(keep)) rmSync(join(this.scopeDir(scope), v), { recursive: true, force: true });
  }

  /** The highest version of each signed config document seen (kept next to the chunks, survives restarts). */
  configVersions(): Map<string, number> {
    try {
      const o = JSON.parse(readFileSync(join(this.dir, CONFIG_VERSIONS), 'utf8')) as Record<string, unknown>;
      return new Map(Object.entries(o).filter((e): e is [string, number] => typeof e[1] === 'number'));
    } catch {
      return new Map();
    }
  }

  saveConfigVersions(v: Map<string, number>): void {
    mkdirSync(this.dir, { recursive: true });
    const tmp = join(this.dir, `${CONFIG_VERSIONS}.tmp`);
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(v)));
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.dir, CONFIG_VERSIONS));
  }
}

const CONFIG_VERSIONS = 'config-versions.json';
