import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveToken, parseTokenKey } from '../../protocol/token.js';
import { runDevice, spawnDevice, startVcardProcess } from '../support/rig/cli.js';
import { PcscdRig } from '../support/rig/pcscd.js';
import { cardSpec, fixturePan, MIR_GPO1_READ } from '../suites/card-fixtures.js';
import { waitFor } from '../support/wait.js';

// `rc-device read --json` as a real process against a real pcscd + vpcd, with
// the cards served by `rc-device vcard` processes: the JSON line and each exit
// code. The reads run side by side on four readers to keep the file fast
// (each `node --import tsx` start costs seconds on a busy 2-core machine).

const KEY_HEX = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
// Two private pcscds (vpcd serves two readers per pcscd): rig A has the Mir
// card and the Visa card, rig B the garbled card and an empty reader.
let rig: PcscdRig;
let rigB: PcscdRig;
const cards: Array<{ stop: () => Promise<void> }> = [];

beforeAll(async () => {
  [rig, rigB] = await Promise.all([PcscdRig.create(), PcscdRig.create()]);
  cards.push(
    ...(await Promise.all([
      startVcardProcess(rig.slots[0]!.port, cardSpec('mir-gpo1'), rig.clientEnv()),
      startVcardProcess(rig.slots[1]!.port, cardSpec('visa'), rig.clientEnv()),
      startVcardProcess(rigB.slots[0]!.port, cardSpec('mir-garbled-record'), rigB.clientEnv()),
    ])),
  );
});

afterAll(async () => {
  await Promise.all(cards.map((c) => c.stop()));
  await rig?.dispose();
  await rigB?.dispose();
});

describe('rc-device read (real process, real pcscd)', () => {
  it('prints one JSON line per outcome and exits 0 / 3 / 4 / 5 / 2', async () => {
    const key = { RC_TOKEN_KEY: KEY_HEX, RC_TOKEN_KEY_VERSION: '3' };
    const env = { ...rig.clientEnv(), ...key };
    const envB = { ...rigB.clientEnv(), ...key };
    const read = (reader: string, extra: string[] = [], e = env) => runDevice(['read', '--reader', reader, '--json', ...extra], e);
    const [mir, visa, garbled, none, noPcscd] = await Promise.all([
      read(rig.slots[0]!.readerName),
      read(rig.slots[1]!.readerName),
      read(rigB.slots[0]!.readerName, [], envB),
      read(rigB.slots[1]!.readerName, ['--timeout-ms', '1500'], envB),
      runDevice(['read', '--json', '--timeout-ms', '3000'], { ...env, PCSCLITE_CSOCK_NAME: `${rig.dir}/no-such-pcscd.comm` }),
    ]);
    // the same card again, without --json (after the first read, not side by side with it)
    const human = await runDevice(['read', '--reader', rig.slots[0]!.readerName], env);

    // 0: a Mir card, exactly one JSON line of the documented shape
    expect(mir.code, mir.stderr).toBe(0);
    const lines = mir.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual(['scheme', 'aid', 'maskedPan', 'expiry', 'psn', 'par', 'token', 'keyVersion', 'apdus', 'ms']);
    expect(j).toMatchObject({ ...MIR_GPO1_READ, keyVersion: 3, apdus: 5 });
    expect(j.token).toBe(deriveToken(Buffer.from(fixturePan('mir-gpo1'), 'ascii'), { expiry: '2028-12' }, parseTokenKey(KEY_HEX, 3)));
    expect(typeof j.ms).toBe('number');
    expect(mir.stderr).not.toContain('development key');

    // 3: not Mir
    expect(visa.code, visa.stderr).toBe(3);
    expect(JSON.parse(visa.stdout)).toEqual({ error: 'not-mir', scheme: 'visa', aid: 'A0000000031010' });

    // 4: the read failed, with the code
    expect(garbled.code, garbled.stderr).toBe(4);
    expect(JSON.parse(garbled.stdout)).toMatchObject({ error: 'card.tlv-malformed' });

    // 5: no card within --timeout-ms
    expect(none.code, none.stderr).toBe(5);
    expect(JSON.parse(none.stdout)).toMatchObject({ error: 'reader.timeout' });

    // 2: no pcscd
    expect(noPcscd.code, noPcscd.stderr).toBe(2);
    expect(JSON.parse(noPcscd.stdout)).toMatchObject({ error: 'reader.pcsc-unavailable' });

    // without --json: one human line
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^Mir card 220012\*{6}9019, expires 2028-12, PSN 01: token [0-9a-f]{32} \(key v3\), 5 APDUs in [\d.]+ ms\n$/);

    for (const r of [mir, visa, garbled, human]) {
      expect(r.stdout + r.stderr).not.toContain(fixturePan('mir-gpo1'));
      expect(r.stdout + r.stderr).not.toContain(fixturePan('visa'));
    }
  }, 180_000);

  it('without RC_TOKEN_KEY it uses the development key and warns on stderr; an unknown reader exits 2', async () => {
    const env = { ...rig.clientEnv() };
    delete env.RC_TOKEN_KEY;
    const [dev, unknown] = await Promise.all([
      runDevice(['read', '--reader', rig.slots[0]!.readerName, '--json'], env),
      runDevice(['read', '--reader', 'no such reader', '--json'], env),
    ]);
    expect(dev.code, dev.stderr).toBe(0);
    expect(JSON.parse(dev.stdout)).toMatchObject({ keyVersion: 0, maskedPan: '220012******9019' });
    expect(dev.stderr).toMatch(/development key/);
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.stdout)).toMatchObject({ error: 'reader.not-found' });
  }, 180_000);

  it('pcscd stopped and restarted while `rc-device read` waits: it recovers and reads the card that comes afterwards', async () => {
    const env = { ...rigB.clientEnv(), RC_LOG_LEVEL: 'info' };
    const child = spawnDevice(['read', '--reader', rigB.slots[1]!.readerName, '--json', '--timeout-ms', '120000'], env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    const until = (re: RegExp) => waitFor(() => re.test(stderr), { timeoutMs: 90_000, what: () => `${re} in the device's log: ${stderr}`, everyMs: 50 });
    try {
      await until(/PC\/SC service up/);
      await rigB.stop();
      await until(/PC\/SC service unavailable/);
      await rigB.start();
      await until(/PC\/SC service is back/);
      const card = await startVcardProcess(rigB.slots[1]!.port, cardSpec('mir-gpo2'), rigB.clientEnv());
      cards.push(card);
      expect(await exited, stderr).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ scheme: 'mir', maskedPan: '220012******9019' });
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 180_000);
});
