import { describe, expect, it } from 'vitest';
import { Shutdown } from '../../sync-server/start/shutdown.js';

describe("the sync server's close chain (sync-server/start/shutdown.ts)", () => {
  it('closes in the reverse order of start-up, each step once', async () => {
    const done: string[] = [];
    const down = new Shutdown();
    for (const name of ['registry', 'broker', 'operator listener', 'timers', 'outer listeners']) down.add(async () => void done.push(name));
    await down.close();
    await down.close(); // a second close has nothing left to close
    expect(done).toEqual(['outer listeners', 'timers', 'operator listener', 'broker', 'registry']);
  });

  it('a close step that fails stops the chain and is seen by the caller', async () => {
    const done: string[] = [];
    const down = new Shutdown();
    down.add(() => void done.push('registry'));
    down.add(() => {
      throw new Error('broker would not close');
    });
    down.add(() => void done.push('listener'));
    await expect(down.close()).rejects.toThrow('broker would not close');
    expect(done).toEqual(['listener']);
  });

  it('a start-up that fails closes everything it opened, past a step that fails too, and throws its own error', async () => {
    const done: string[] = [];
    const down = new Shutdown();
    down.add(() => void done.push('registry'));
    down.add(() => Promise.reject(new Error('clients already gone')));
    down.add(() => {
      throw new Error('listener already closed');
    });
    down.add(() => void done.push('timers'));
    const failure = new Error('cannot listen on 127.0.0.1:1');
    await expect(down.abort(failure)).rejects.toBe(failure);
    expect(done).toEqual(['timers', 'registry']);
  });
});
