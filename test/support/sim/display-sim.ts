import type { BeepPattern, Light } from '../../../device/io/types.js';
import { runSimCli, isMain } from './cli.js';
import type { SimEndpoint } from './endpoint.js';
import { Rcp1Peer, type Behaviour, type Rcp1PeerOptions } from './rcp1-peer.js';

export interface Shown {
  text: string;
  light: Light;
  beep: BeepPattern;
}

/** A validator display speaking RCP/1: records what it was asked to show. Behaviours come from Rcp1Peer. */
export class DisplaySim {
  readonly peer: Rcp1Peer;
  readonly shown: Shown[] = [];

  constructor(endpoint: SimEndpoint, opts: Rcp1PeerOptions & { behaviour?: Behaviour } = {}) {
    this.peer = new Rcp1Peer(endpoint, opts);
    if (opts.behaviour) this.peer.setBehaviour(opts.behaviour);
    this.peer.onCommand = (c) => {
      if (c.type === 'show') this.shown.push({ text: c.text, light: c.light, beep: c.beep });
      if (c.type === 'clear') this.shown.push({ text: '', light: 'off', beep: 'none' });
    };
  }

  get current(): Shown | undefined {
    return this.shown.at(-1);
  }

  setBehaviour(b: Behaviour): void {
    this.peer.setBehaviour(b);
  }

  close(): void {
    this.peer.close();
  }
}

// node --import tsx test/support/sim/display-sim.ts --port /path [--baud 19200] [--behaviour normal]
if (isMain(import.meta.url)) {
  await runSimCli('display', (endpoint, args) => {
    const sim = new DisplaySim(endpoint, { behaviour: args.behaviour });
    return { peer: sim.peer, tamper: (d) => void sim.peer.sendEvent({ type: 'tamper', detail: d }), close: () => sim.close() };
  });
}
