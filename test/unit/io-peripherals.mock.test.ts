import { describe } from 'vitest';
import { createMockLine } from '../support/sim/mock-line.js';
import { ioPeripheralsSuite, type IoRig } from '../suites/io-peripherals.suite.js';

let n = 0;

/** serialport's MockBinding, the simulator on its far end. */
const mockRig: IoRig = {
  name: 'mock binding',
  timing: { ackTimeoutMs: 40 },
  async line() {
    const line = createMockLine(`/dev/rc-mock-${process.pid}-${++n}`);
    return {
      port: line.path,
      binding: line.binding,
      endpoint: line.peer,
      simReady: async () => undefined,
      unplug: async () => line.unplug(),
      replug: async () => line.replug(),
      close: async () => line.peer.close(),
    };
  },
};

describe(`peripherals over rcp1 (${mockRig.name})`, () => ioPeripheralsSuite(mockRig));
