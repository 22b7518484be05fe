import type { EmvCardSpec } from './spec.js';
import type { VirtualCard } from './types.js';

// Placeholder until the synthetic EMV card lands (same session).
export function createEmvCard(_spec: EmvCardSpec): VirtualCard {
  throw new Error('synthetic EMV card not implemented yet');
}
