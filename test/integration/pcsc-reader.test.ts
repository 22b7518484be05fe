import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMirCard } from '../../device/emv/read.js';
import { PcscReaderSource } from '../../device/reader/pcsc.js';
import type { CardChannel } from '../../device/reader/types.js';
import { isRcError } from '../../protocol/errors.js';
import { createLogger } from '../../protocol/log.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { nextEvent } from '../support/rig/events.js';
import { PcscdRig } from '../support/rig/pcscd.js';
import { VcardHost, type HostCardSpec } from '../support/rig/vcards.js';
import { MIR_PAN } from '../support/pans.js';

// The reader layer against the real pcscd + vpcd, with echo cards served by a
// child process (test/support/rig/vcard-host.ts).

let rig: PcscdRig;
let host: VcardHost;
let source: PcscReaderSource;
let dir: string;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

async function insertAndConnect(slot: number, spec: HostCardSpec = { kind: 'rig-echo' }): Promise<CardChannel> {
  const s = rig.slots[slot]!;
  const inserted = nextEvent(source, 'card-inserted', (e) => e.reader === s.readerName);
  await host.insert(s.port, spec);
  return (await inserted).channel;
}

async function removeCard(slot: number): Promise<void> {
  const s = rig.slots[slot]!;
  if (!source.readers().find((r) => r.name === s.readerName)?.cardPresent) {
    await host.remove(s.port);
    return;
  }
  const removed = nextEvent(source, 'card-removed', (e) => e.reader === s.readerName);
  await host.remove(s.port);
  await removed;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rc-pcsc-reader-'));
  rig = await PcscdRig.create();
  rig.useAsClient();
  host = await VcardHost.start();
  source = await PcscReaderSource.create({
    log: createLogger({ level: 'debug', destination: (await import('pino')).destination({ dest: join(dir, 'reader.log'), sync: true }) }),
    backoffMaxMs: 1000,
  });
  const added = nextEvent(source, 'reader-added', (e) => e.reader === rig.slots[1]!.readerName);
  source.start();
  await added;
});

afterAll(async () => {
  await source?.close();
  await host?.close();
  await rig?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('PC/SC reader source over a private pcscd', () => {
  it('lists both vpcd readers with no card', () => {
    expect(source.readers()).toEqual([
      { name: rig.slots[0]!.readerName, cardPresent: false },
      { name: rig.slots[1]!.readerName, cardPresent: false },
    ]);
  });

  it('a card put on the reader is seen and its answers come back whole', async () => {
    const ch = await insertAndConnect(0);
    const res = await ch.transmit(Uint8Array.from([0x00, 0xb2, 0x01, 0x0c, 0x00]), 1000);
    expect(hex(res)).toBe('00b2010c009000');
    await removeCard(0);
  });

  it('an APDU costs well under a millisecond (TCP_NODELAY shim)', async () => {
    const ch = await insertAndConnect(0);
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      await ch.transmit(Uint8Array.from([0x00, 0xca, 0x9f, 0x17, 0x00]), 1000);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const median = times[50]!;
    console.log(`pcscd APDU round trip: median ${median.toFixed(3)} ms, p95 ${times[95]!.toFixed(3)} ms`);
    expect(median).toBeLessThan(5); // without the shim it is ~45 ms per APDU
    await removeCard(0);
  });

  it('two readers, a card on each, answer independently', async () => {
    const [a, b] = await Promise.all([insertAndConnect(0), insertAndConnect(1)]);
    const [ra, rb] = await Promise.all([
      a.transmit(Uint8Array.from([0x00, 0xa4, 0x04, 0x00, 0x01, 0xaa]), 1000),
      b.transmit(Uint8Array.from([0x00, 0xa4, 0x04, 0x00, 0x01, 0xbb]), 1000),
    ]);
    expect(hex(ra)).toBe('00a4040001aa9000');
    expect(hex(rb)).toBe('00a4040001bb9000');
    expect(source.readers().every((r) => r.cardPresent)).toBe(true);
    await Promise.all([removeCard(0), removeCard(1)]);
  });

  it('two readers, a Mir card on each, read at the same time', async () => {
    const [a, b] = await Promise.all([
      insertAndConnect(0, { kind: 'emv', pan: MIR_PAN, expiry: '2028-12', psn: '01' }),
      insertAndConnect(1, { kind: 'emv', pan: '2200554433221108', expiry: '2029-01', psn: '02', gpoFormat: 1 }),
    ]);
    const opts = { now: new Date(), tokenKey: DEV_TOKEN_KEY };
    const [ra, rb] = await Promise.all([readMirCard(a, opts), readMirCard(b, opts)]);
    expect([ra.maskedPan, ra.expiry, ra.psn]).toEqual(['220012******9019', '2028-12', '01']);
    expect([rb.maskedPan, rb.expiry, rb.psn]).toEqual(['220055******1108', '2029-01', '02']);
    await Promise.all([removeCard(0), removeCard(1)]);
  });

  it('a card pulled mid-APDU gives card.removed, and the next card reads normally', async () => {
    const ch = await insertAndConnect(0);
    const removed = nextEvent(source, 'card-removed', (e) => e.reader === rig.slots[0]!.readerName);
    const err = await ch.transmit(Uint8Array.from([0x00, 0xee, 0x00, 0x00, 0x00]), 2000).catch((e: unknown) => e);
    expect(isRcError(err, 'card.removed')).toBe(true);
    const again = await ch.transmit(Uint8Array.from([0x00, 0xb2, 0x01, 0x0c, 0x00]), 1000).catch((e: unknown) => e);
    expect(isRcError(again, 'card.removed')).toBe(true);
    await removed;
    const next = await insertAndConnect(0);
    expect(hex(await next.transmit(Uint8Array.from([0x00, 0xb2, 0x01, 0x0c, 0x00]), 1000))).toBe('00b2010c009000');
    await removeCard(0);
  });

  it('a card that does not answer gives card.timeout, and the next card reads normally', async () => {
    const ch = await insertAndConnect(0);
    const err = await ch.transmit(Uint8Array.from([0x00, 0xdd, 0x00, 0x00, 0x00]), 300).catch((e: unknown) => e);
    expect(isRcError(err, 'card.timeout')).toBe(true);
    await removeCard(0);
    const next = await insertAndConnect(0);
    expect(hex(await next.transmit(Uint8Array.from([0x00, 0xb2, 0x01, 0x0c, 0x00]), 1000))).toBe('00b2010c009000');
    await removeCard(0);
  });

  it('pcscd stopped while waiting (or absent at start): service-down, no CPU spin; restarted: readers and cards come back', async () => {
    const down = nextEvent(source, 'service-down');
    await rig.stop();
    await down;
    expect(source.readers()).toEqual([]);
    // a second source started while pcscd is absent: it reports it and does not throw
    const late = await PcscReaderSource.create({ log: createLogger({ level: 'silent' }), backoffMaxMs: 1000 });
    const lateDown = nextEvent(late, 'service-down');
    late.start();
    expect((await lateDown).error).toMatch(/not running|service/i);
    const lateBack = nextEvent(late, 'reader-added', (e) => e.reader === rig.slots[0]!.readerName, 15_000);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 3000)); // not a wait but a measuring window: CPU use while pcscd is absent
    const cpu = process.cpuUsage(cpu0);
    const share = (cpu.user + cpu.system) / 1000 / (performance.now() - t0);
    console.log(`CPU while pcscd is absent: ${(share * 100).toFixed(1)} % of one core`);
    expect(share).toBeLessThan(0.1);
    expect(source.failedAttempts).toBeGreaterThan(0);

    const up = nextEvent(source, 'service-up');
    const back = nextEvent(source, 'reader-added', (e) => e.reader === rig.slots[0]!.readerName);
    await rig.start();
    await up;
    await back;
    await lateBack;
    await late.close();
    const ch = await insertAndConnect(0);
    expect(hex(await ch.transmit(Uint8Array.from([0x00, 0xb2, 0x01, 0x0c, 0x00]), 1000))).toBe('00b2010c009000');
    await removeCard(0);
  });

  it('pcscd killed hard (stale socket and pid file left behind) is restarted and seen again', async () => {
    const down = nextEvent(source, 'service-down');
    await rig.crash();
    await down;
    const back = nextEvent(source, 'reader-added', (e) => e.reader === rig.slots[0]!.readerName);
    await rig.start();
    await back;
    const ch = await insertAndConnect(0);
    expect(hex(await ch.transmit(Uint8Array.from([0x00, 0xb2, 0x01, 0x0c, 0x00]), 1000))).toBe('00b2010c009000');
    await removeCard(0);
  });
});
