import { emitKeypressEvents } from 'node:readline';
import { createInterface } from 'node:readline';
import { CARDS, ScriptedClock, browserLines, describeTap, startDemoWorld, tapCard, type DemoCard, type DemoOutput } from './demo.js';

/**
 * `npm run demo:interactive`: the same world as the scripted demo; a person
 * taps demo cards by key. The clock starts on a school morning and runs in
 * real time; `h` moves it one hour on (try the student after 15:00).
 */

interface Key {
  key: string;
  card: DemoCard;
  device: 'bus' | 'gate';
  reader: string;
  where: string;
}

const KEYS: readonly Key[] = [
  { key: '1', card: CARDS.pensioner, device: 'bus', reader: 'Bus reader', where: 'Автобус 7 / Bus 7' },
  { key: '2', card: CARDS.unknown, device: 'bus', reader: 'Bus reader', where: 'Автобус 7 / Bus 7' },
  { key: '3', card: CARDS.stopped, device: 'bus', reader: 'Bus reader', where: 'Автобус 7 / Bus 7' },
  { key: '4', card: CARDS.student, device: 'gate', reader: 'Gate entry', where: 'Школа 7, вход / School 7, entry' },
  { key: '5', card: CARDS.student, device: 'gate', reader: 'Gate exit', where: 'Школа 7, выход / School 7, exit' },
  { key: '6', card: CARDS.visa, device: 'bus', reader: 'Bus reader', where: 'Автобус 7 / Bus 7' },
];

class RunningClock extends ScriptedClock {
  private last = Date.now();
  override wallMs(): number {
    this.tick();
    return super.wallMs();
  }
  override monoMs(): number {
    this.tick();
    return super.monoMs();
  }
  private tick(): void {
    const now = Date.now();
    this.advance(now - this.last);
    this.last = now;
  }
}

export async function runInteractiveDemo(o: { out: DemoOutput; logLevel?: string; input?: NodeJS.ReadableStream }): Promise<void> {
  const clock = new RunningClock('2026-11-24T08:00:00+03:00');
  o.out.line('Starting the sync-server and two devices…');
  const world = await startDemoWorld({ clock, out: o.out, ...(o.logLevel ? { logLevel: o.logLevel } : {}) });
  for (const l of browserLines(world)) o.out.line(l);
  const help = () => {
    o.out.line('');
    for (const k of KEYS) o.out.line(`  ${k.key}  ${k.card.label.ru} / ${k.card.label.en} → ${k.where}`);
    o.out.line('  h  +1 час / one hour later      q  выход / quit');
  };
  help();
  const input = o.input ?? process.stdin;
  let chain: Promise<void> = Promise.resolve();
  await new Promise<void>((resolve) => {
    const tty = input === process.stdin && process.stdin.isTTY;
    const finish = () => {
      if (tty) process.stdin.setRawMode(false);
      input.removeAllListeners('keypress');
      rl?.close();
      resolve();
    };
    let rl: ReturnType<typeof createInterface> | null = null;
    const onKey = (k: string): void => {
      if (k === 'q' || k === '\u0003') return finish();
      if (k === 'h') {
        chain = chain.then(() => {
          clock.advance(3_600_000);
          o.out.line(`  time now ${new Date(clock.wallMs()).toLocaleString('ru-RU', { timeZone: 'Europe/Moscow' })}`);
        });
        return;
      }
      const key = KEYS.find((x) => x.key === k);
      if (!key) return;
      const dev = key.device === 'bus' ? world.bus : world.gate;
      const readers = key.device === 'bus' ? world.busReaders : world.gateReaders;
      // taps one after another, as a person would
      chain = chain
        .then(() => tapCard(dev, readers, key.reader, key.card))
        .then(({ tap, outcome }) => {
          for (const l of describeTap(key.where, key.card, tap, outcome, world.takeConsole())) o.out.line(l);
        })
        .catch((e: unknown) => o.out.line(`  tap failed: ${e instanceof Error ? e.message : String(e)}`));
    };
    if (tty) {
      emitKeypressEvents(process.stdin);
      process.stdin.setRawMode(true);
      process.stdin.on('keypress', (s: string | undefined) => onKey(s ?? ''));
      process.stdin.resume();
    } else {
      // not a terminal (piped keys): one key per line
      rl = createInterface({ input });
      rl.on('line', (l) => {
        for (const ch of l.trim()) onKey(ch);
      });
      rl.on('close', () => resolve());
    }
  });
  await chain;
  await world.close();
  if (input === process.stdin) process.stdin.pause();
  o.out.line('Пока / bye.');
}
