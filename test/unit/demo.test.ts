import { describe, expect, it } from 'vitest';
import { CARDS, runScriptedDemo } from '../../demo/demo.js';

describe('npm start: the scripted demo', () => {
  it('runs the whole story in process: benefit, full fare, stop-list, repeat tap, not-Mir, student in and out, after hours; the journal reaches the server', async () => {
    const lines: string[] = [];
    const r = await runScriptedDemo({ out: { line: (s) => lines.push(s) } });
    expect(r.taps.map((t) => [t.device, t.tap.result, t.tap.reason, t.tap.fareKopecks])).toEqual([
      ['bus-7-demo', 'allow', 'benefit', 0],
      ['bus-7-demo', 'allow', 'full-fare', 3500],
      ['bus-7-demo', 'deny', 'stop-list', 0],
      ['bus-7-demo', 'allow', 'repeat-tap', 0],
      ['bus-7-demo', 'deny', 'card.not-mir', 0],
      ['school-7-gate-demo', 'allow', 'ok', 0],
      ['school-7-gate-demo', 'allow', 'ok', 0],
      ['school-7-gate-demo', 'deny', 'outside-hours', 0],
    ]);
    expect(r.taps.filter((t) => t.outcome).map((t) => [t.tap.gate, t.outcome!.outcome])).toEqual([
      ['open-entry', 'passed'],
      ['open-exit', 'passed'],
    ]);
    // every journal entry (decisions and gate events) reached the server
    expect(r.serverJournal).toEqual(r.deviceJournal);
    expect(r.deviceJournal).toEqual({ 'bus-7-demo': 5, 'school-7-gate-demo': 5 });
    const text = lines.join('\n');
    expect(text).toContain('35,00 ₽');
    expect(text).toContain('Карта заблокирована / Card blocked');
    expect(text).toContain('220070******0017');
    for (const c of Object.values(CARDS)) if (c.spec.kind === 'emv') expect(text).not.toContain(c.spec.pan);
    // without stay (piped, --no-serve) the demo ends after the script and says how to keep the server open for a browser
    expect(text).toContain('--serve');
    expect(text).not.toContain('/cabinet/');
  }, 60_000);
});

describe('npm run demo:interactive', () => {
  it('taps the demo cards a person chooses by key, in order, and quits on q', async () => {
    const { Readable } = await import('node:stream');
    const { runInteractiveDemo } = await import('../../demo/interactive.js');
    const lines: string[] = [];
    await runInteractiveDemo({ out: { line: (s) => lines.push(s) }, input: Readable.from(['1\n', '3\n', '4\n', 'hhhhhhhh\n', '4\n', 'q\n']) });
    const verdicts = lines.filter((l) => l.includes('РАЗРЕШЕНО') || l.includes('ОТКАЗ')).map((l) => /\(reason ([^,]+),/.exec(l)?.[1]);
    // pensioner free; stop-listed refused; student in at 08:00; eight hours later (16:00) the student's second entry is outside hours
    expect(verdicts).toEqual(['benefit', 'stop-list', 'ok', 'outside-hours']);
    expect(lines.at(-1)).toContain('bye');
  }, 60_000);
});
