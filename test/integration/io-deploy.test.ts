import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** [Section] key=value lines of a unit file; repeated keys collect. */
function parseUnit(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1] ?? '';
      continue;
    }
    const eq = line.indexOf('=');
    const key = `${section}.${line.slice(0, eq)}`;
    m.set(key, [...(m.get(key) ?? []), line.slice(eq + 1)]);
  }
  return m;
}

const units = {
  device: {
    file: 'deploy/rc-device.service',
    cli: 'device/cli.ts',
    bin: '/opt/resident-card/dist/rc-device.js',
    state: '/var/lib/rc-device',
    // the `run` command comes with the tap loop (issue 5); until it exists there is nothing to check against
    command: 'device/commands/run.ts',
  },
  server: {
    file: 'deploy/rc-sync-server.service',
    cli: 'sync-server/cli.ts',
    bin: '/opt/resident-card/dist/rc-sync-server.js',
    state: '/var/lib/rc-sync-server',
    command: 'sync-server/commands/start.ts',
  },
};

describe('systemd units', () => {
  for (const [name, u] of Object.entries(units)) {
    const unit = parseUnit(readFileSync(`${ROOT}${u.file}`, 'utf8'));
    const one = (k: string) => unit.get(k)?.at(-1);

    it(`${name}: restarts forever, stops with SIGTERM, and runs sandboxed with only its state dir writable`, () => {
      expect(one('Service.Restart')).toBe('always');
      expect(Number(one('Service.RestartSec'))).toBeGreaterThan(0);
      expect(one('Unit.StartLimitIntervalSec')).toBe('0');
      expect(one('Service.KillSignal')).toBe('SIGTERM');
      expect(one('Service.NoNewPrivileges')).toBe('yes');
      expect(one('Service.ProtectSystem')).toBe('strict');
      expect(one('Service.ReadWritePaths')).toBe(u.state);
      expect(one('Service.CapabilityBoundingSet')).toBe('');
      expect(one('Service.User')).toMatch(/^rc-/);
      expect(one('Service.WatchdogSec')).toBeUndefined(); // deliberately: deploy/README.md explains why
    });

    it.skipIf(!existsSync(`${ROOT}${u.command}`))(`${name}: the program accepts the unit's command line`, async () => {
      const exec = one('Service.ExecStart') ?? '';
      const [node, bin, ...args] = exec.split(/\s+/);
      expect(node).toBe('/usr/bin/node');
      expect(bin).toBe(u.bin);
      // same arguments against the sources; --help makes commander validate the command and options and exit 0
      const r = await run(process.execPath, ['--import', 'tsx', `${ROOT}${u.cli}`, ...args, '--help'], { cwd: ROOT, timeout: 50_000 });
      expect(r.stdout).toContain('Usage:');
    });
  }

  it('device: may use serial ports (dialout, ttyS/ttyUSB/ttyACM) and nothing else from /dev', () => {
    const unit = parseUnit(readFileSync(`${ROOT}${units.device.file}`, 'utf8'));
    expect(unit.get('Service.SupplementaryGroups')).toEqual(['dialout']);
    expect(unit.get('Service.DevicePolicy')).toEqual(['closed']);
    expect(unit.get('Service.DeviceAllow')).toEqual(['char-ttyS rw', 'char-ttyUSB rw', 'char-ttyACM rw']);
  });

  // (verify also checks that ExecStart's /usr/bin/node exists, so it needs this machine's layout)
  it.skipIf(!existsSync('/usr/bin/systemd-analyze') || !existsSync('/usr/bin/node'))('systemd-analyze verify accepts both units', async () => {
    const r = await run('/usr/bin/systemd-analyze', ['verify', '--man=no', `${ROOT}${units.device.file}`, `${ROOT}${units.server.file}`], {
      timeout: 20_000,
    });
    expect(r.stderr.trim()).toBe('');
  });
});
