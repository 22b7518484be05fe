import type { VCardFaults } from './spec.js';
import type { VirtualCard } from './types.js';

// Placeholder until fault injection lands (same session).
export function withFaults(card: VirtualCard, _faults: VCardFaults): VirtualCard {
  return card;
}
