import type { Config } from '../config/schema.js';
import { decideBus } from './bus.js';
import { decideCanteen } from './canteen.js';
import { decideTurnstile } from './school.js';
import type { Decision, Tap, View } from './types.js';

/**
 * The decision core: `decide(tap, view, cfg)` is a pure function: no I/O, no
 * clock (time comes in the tap), no logger. The same taps from the same view
 * give the same decision. The runtime, `rc-device replay` and the tests all call
 * it; the store commits the decision's journal entry and counter delta.
 *
 *   const view = store.readView(tap.card.token);
 *   const decision = decide(tap, view, cfg);
 *   const entry = store.commitTap(tap, decision, view);   // durable; only now signal
 *
 * (`processTap` in device/store does exactly this in one call.)
 */
export function decide(tap: Tap, view: View, cfg: Config): Decision {
  switch (cfg.device.kind) {
    case 'bus':
      return decideBus(tap, view, cfg);
    case 'turnstile':
      return decideTurnstile(tap, view, cfg);
    case 'canteen':
      return decideCanteen(tap, view, cfg);
  }
}

export { decideBus, decideCanteen, decideTurnstile };
export * from './types.js';
