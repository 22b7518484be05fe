import type { Direction } from '../../../device/io/types.js';
import { runSimCli, isMain } from './cli.js';
import type { SimEndpoint } from './endpoint.js';
import { Rcp1Peer, type Behaviour, type Rcp1PeerOptions } from './rcp1-peer.js';

export interface TurnstileSimOptions extends Rcp1PeerOptions {
  /** How long after the gate opens the simulated person walks through (normal behaviour). */
  passDelayMs?: number;
  behaviour?: Behaviour;
}

/**
 * A turnstile controller speaking RCP/1 on the far end of a line. Normal: it
 * acknowledges OPEN and reports PASSED after passDelayMs; never-passes: it
 * reports OPEN_TIMEOUT when the window the host sent runs out. Other
 * behaviours (silent, garbage, noisy, nak-first) come from Rcp1Peer.
 */
export class TurnstileSim {
  readonly peer: Rcp1Peer;
  state: 'closed' | 'open-entry' | 'open-exit' | 'free-passage' = 'closed';
  passDelayMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(endpoint: SimEndpoint, opts: TurnstileSimOptions = {}) {
    this.peer = new Rcp1Peer(endpoint, opts);
    this.passDelayMs = opts.passDelayMs ?? 50;
    if (opts.behaviour) this.peer.setBehaviour(opts.behaviour);
    this.peer.onCommand = (c) => {
      switch (c.type) {
        case 'open':
          this.open(c.direction, c.windowMs);
          break;
        case 'close':
          this.cancel();
          this.state = 'closed';
          break;
        case 'free-passage':
          this.cancel();
          this.state = c.on ? 'free-passage' : 'closed';
          break;
        default:
          break;
      }
    };
  }

  setBehaviour(b: Behaviour): void {
    this.peer.setBehaviour(b);
  }

  /** Someone forces the gate: a TAMPER event. */
  tamper(detail = 1): Promise<boolean> {
    return this.peer.sendEvent({ type: 'tamper', detail });
  }

  close(): void {
    this.cancel();
    this.peer.close();
  }

  private open(direction: Direction, windowMs: number): void {
    this.cancel();
    if (this.state !== 'free-passage') this.state = direction === 'entry' ? 'open-entry' : 'open-exit';
    const passes = this.peer.behaviour.mode !== 'never-passes' && this.passDelayMs < windowMs;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (this.state !== 'free-passage') this.state = 'closed';
        void this.peer.sendEvent(passes ? { type: 'passed', direction } : { type: 'open-timeout', direction });
      },
      passes ? this.passDelayMs : windowMs,
    );
  }

  private cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

// node --import tsx test/support/sim/turnstile-sim.ts --port /path [--baud 19200] [--behaviour normal] [--pass-delay-ms 50] [--nak-first N]
if (isMain(import.meta.url)) {
  await runSimCli('turnstile', (endpoint, args) => {
    const sim = new TurnstileSim(endpoint, { passDelayMs: args.passDelayMs, behaviour: args.behaviour });
    return { peer: sim.peer, tamper: (d) => void sim.tamper(d), close: () => sim.close() };
  });
}
