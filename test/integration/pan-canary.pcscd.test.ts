import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destination } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMirCard } from '../../device/emv/read.js';
import type { VCardSpec } from '../../device/vcard/spec.js';
import { createLogger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { runDevice, startVcardProcess } from '../support/rig/cli.js';
import { pcscdCardRig } from '../support/rig/pcscd-card-rig.js';
import { CANARY_PAN } from '../support/pans.js';

/**
 * A canary card number is tapped through the real stack (pcscd with its debug
 * log on, vpcd, virtual cards in child processes, the device's reader source
 * and EMV read with debug logs, and `rc-device read` as a real process with
 * RC_LOG_LEVEL=debug and its TMPDIR in our temp dir). Afterwards every file
 * under the test's temp dirs (pcscd's rig dir included) and all captured
 * stdout/stderr/logs are scanned: the PAN appears nowhere, in any form.
 */
const CANARY = CANARY_PAN;

function forms(pan: string): string[] {
  const ascii = Buffer.from(pan, 'ascii');
  return [pan, pan.slice(6, pan.length - 4), ascii.toString('hex'), ascii.toString('hex').toUpperCase(), ascii.toString('base64').slice(0, 16)];
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'rc-canary-'));
const logPath = join(dir, 'device.log');
const log = createLogger({ level: 'trace', destination: destination({ dest: logPath, sync: true }) });
const rig = pcscdCardRig({ debug: true, log: log.child({ component: 'reader' }) });

beforeAll(async () => {
  await rig.setup();
});

afterAll(async () => {
  await rig.teardown();
  rmSync(dir, { recursive: true, force: true });
});

describe('the PAN leaves no trace through the real PC/SC stack', () => {
  it('a canary PAN read, refused and pulled through pcscd shows up in no file, log or output', async () => {
    const base = { kind: 'emv', pan: CANARY, expiry: '2031-07', psn: '01' } as const;
    const specs: VCardSpec[] = [
      { ...base, gpoFormat: 1 },
      { ...base, panLocation: 'track2-only' },
      { ...base, faults: { garbleTlvAt: 4 } },
      { ...base, faults: { removeAfterApdus: 4 } },
      { ...base, faults: { truncateAt: 4 } },
    ];
    const results: string[] = [];
    let reads = 0;
    for (const spec of specs) {
      const ch = await rig.present(spec);
      try {
        const r = await readMirCard(ch, { now: new Date(), tokenKey: DEV_TOKEN_KEY, log: log.child({ component: 'emv' }) });
        results.push(JSON.stringify(r));
        reads++;
      } catch (e) {
        results.push(JSON.stringify(e), String((e as Error).message), String((e as Error).stack));
      }
      await rig.remove();
    }
    expect(reads).toBe(2);

    // and once through `rc-device read` + `rc-device vcard` as real processes
    const env = { ...rig.pcscd.clientEnv(), RC_LOG_LEVEL: 'debug', TMPDIR: dir };
    const card = await startVcardProcess(rig.pcscd.slots[1]!.port, { ...base, gpoFormat: 2 }, env);
    const cli = await runDevice(['read', '--reader', rig.pcscd.slots[1]!.readerName, '--json'], env);
    await card.stop();
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ maskedPan: '220073******0574' });
    writeFileSync(join(dir, 'captured.txt'), [...results, cli.stdout, cli.stderr, card.output()].join('\n'));

    const files = [...filesUnder(dir), ...filesUnder(rig.pcscd.dir)];
    expect(files.some((f) => f.endsWith('pcscd.log'))).toBe(true);
    // the scan is meaningful: the logs and outputs were written, and hold the masked PAN
    expect(readFileSync(logPath, 'utf8')).toMatch(/"component":"emv"/);
    expect(readFileSync(logPath, 'utf8')).toMatch(/"component":"reader"/);
    expect(readFileSync(join(dir, 'captured.txt'), 'utf8')).toContain('220073******0574');
    for (const f of files) {
      const text = readFileSync(f).toString('latin1');
      for (const form of forms(CANARY)) expect(text.includes(form), `${form} found in ${f}`).toBe(false);
    }
  }, 120_000);
});
