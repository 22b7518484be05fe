import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEMO_CARDS, register } from '../../device/commands/demo.js';
import { setRootLogger, createLogger } from '../../protocol/log.js';
import { Writable } from 'node:stream';

describe('rc-device demo', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('reads every demo card through the real EMV code: Mir cards read, the others are refused as not-mir, no PAN printed', async () => {
    setRootLogger(createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) }));
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    const program = new Command('rc-device').exitOverride();
    register(program);
    await program.parseAsync(['node', 'rc-device', 'demo', '--cards', '--json']);
    vi.restoreAllMocks();
    const lines = out
      .join('')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(DEMO_CARDS.length);
    expect(lines.filter((l) => l.scheme === 'mir')).toHaveLength(4);
    expect(lines.filter((l) => l.error === 'card.not-mir').map((l) => l.scheme)).toEqual(['visa', 'cb']);
    for (const l of lines.filter((x) => x.scheme === 'mir')) expect(Number(l.apdus)).toBeLessThanOrEqual(6);
    const text = out.join('');
    for (const c of DEMO_CARDS) if (c.spec.kind === 'emv') expect(text).not.toContain(c.spec.pan);
  });
});
