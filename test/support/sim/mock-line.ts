import { MockBinding, type MockPortBinding } from '@serialport/binding-mock';
import type { SerialBinding } from '../../../device/io/link.js';
import type { SimEndpoint } from './endpoint.js';

/**
 * serialport's MockBinding with a far end: what the driver writes reaches the
 * simulator's endpoint, what the simulator writes is read by the driver.
 * unplug() makes the port vanish like a pulled USB adapter (a pending read
 * fails, so SerialPortStream reports a disconnect, and opening fails until
 * replug()). One line per path; use a unique path per test.
 *
 * (ESM MockBinding with SerialPortStream, not SerialPortMock: in ESM the two
 * can load separate copies of the mock's port table.)
 */
export interface MockLine {
  readonly path: string;
  readonly binding: SerialBinding;
  /** The simulator's end. */
  readonly peer: SimEndpoint;
  readonly plugged: boolean;
  unplug(): void;
  replug(): void;
  /** Times the driver opened the port successfully. */
  readonly opens: number;
}

export function createMockLine(path: string): MockLine {
  MockBinding.createPort(path, { echo: false, record: false });
  const peerListeners = new Set<(chunk: Buffer) => void>();
  const unplugListeners = new Set<() => void>();
  let plugged = true;
  let current: MockPortBinding | undefined;
  let opens = 0;

  class LinePort {
    constructor(private readonly inner: MockPortBinding) {}
    get isOpen(): boolean {
      return this.inner.isOpen;
    }
    get openOptions(): MockPortBinding['openOptions'] {
      return this.inner.openOptions;
    }
    read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
      return new Promise((resolve, reject) => {
        const gone = (): void => reject(new Error('device unplugged (mock)'));
        unplugListeners.add(gone);
        this.inner.read(buffer, offset, length).then(
          (r: { buffer: Buffer; bytesRead: number }) => {
            unplugListeners.delete(gone);
            resolve(r);
          },
          (e: unknown) => {
            unplugListeners.delete(gone);
            reject(e);
          },
        );
      });
    }
    async write(buffer: Buffer): Promise<void> {
      if (!plugged) throw new Error('device unplugged (mock)');
      await this.inner.write(buffer);
      const copy = Buffer.from(buffer);
      setImmediate(() => {
        if (plugged) for (const l of peerListeners) l(copy);
      });
    }
    async close(): Promise<void> {
      if (current === this.inner) current = undefined;
      await this.inner.close();
    }
    update(o: { baudRate: number }): Promise<void> {
      return this.inner.update(o);
    }
    set(o: Parameters<MockPortBinding['set']>[0]): Promise<void> {
      return this.inner.set(o);
    }
    get(): ReturnType<MockPortBinding['get']> {
      return this.inner.get();
    }
    getBaudRate(): Promise<{ baudRate: number }> {
      return this.inner.getBaudRate();
    }
    flush(): Promise<void> {
      return this.inner.flush();
    }
    drain(): Promise<void> {
      return this.inner.drain();
    }
  }

  const binding = {
    list: () => MockBinding.list(),
    async open(options: Parameters<typeof MockBinding.open>[0]): Promise<LinePort> {
      if (!plugged) throw new Error(`Error: No such file or directory, cannot open ${path} (mock)`);
      const inner = await MockBinding.open(options);
      current = inner;
      opens++;
      return new LinePort(inner);
    },
  } as unknown as SerialBinding;

  const peer: SimEndpoint = {
    write(bytes) {
      const port = current;
      if (!plugged || !port?.isOpen) return;
      port.emitData(Buffer.from(bytes));
    },
    onData(listener) {
      peerListeners.add(listener);
      return () => peerListeners.delete(listener);
    },
    async close() {
      peerListeners.clear();
    },
  };

  return {
    path,
    binding,
    peer,
    get plugged() {
      return plugged;
    },
    get opens() {
      return opens;
    },
    unplug() {
      plugged = false;
      for (const l of [...unplugListeners]) l();
      unplugListeners.clear();
    },
    replug() {
      plugged = true;
    },
  };
}
