import { decideBus } from './bus.js';
import { decideCanteen } from './canteen.js';
import { decidePartner } from './partner.js';
import { decideTurnstile } from './school.js';
import type { Decision, DeviceKind, RulesContext, Tap, View } from './types.js';

/**
 * The decision core: `decide(tap, view, ctx)` is a pure function: no I/O, no
 * clock (time comes in the tap), no logger. The same taps from the same view
 * give the same decision. The runtime, `rc-device replay` and the tests all call
 * it; the store commits the decision's journal entry and counter delta.
 *
 *   const view = store.readView(tap.card.token);
 *   const decision = decide(tap, view, cfg);   // a device config is a RulesContext
 *   const entry = store.commitTap(tap, decision, view);   // durable; only now signal
 *
 * (`processTap` on the device does exactly this in one call.) It lives in
 * protocol/ so the server's fare settlement calls the very same functions; it
 * imports nothing but protocol/.
 */
export function decide(tap: Tap, view: View, cfg: RulesContext): Decision {
  if (isKind(cfg, 'bus')) return decideBus(tap, view, cfg);
  if (isKind(cfg, 'turnstile')) return decideTurnstile(tap, view, cfg);
  if (isKind(cfg, 'partner')) return decidePartner(tap, view, cfg);
  return decideCanteen(tap, view, cfg);
}

/** Narrow a context (or a device config) by its device kind: TypeScript does not narrow on the nested `device.kind` by itself. */
export function isKind<C extends { device: { kind: DeviceKind } }, K extends DeviceKind>(cfg: C, kind: K): cfg is Extract<C, { device: { kind: K } }> {
  return cfg.device.kind === kind;
}

export { decideBus, decideCanteen, decidePartner, decideTurnstile };
export * from './types.js';
export { localTime } from './time.js';
