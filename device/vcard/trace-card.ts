import type { TraceFile } from './spec.js';
import type { VirtualCard } from './types.js';

// Placeholder until the trace replay lands (same session).
export function createTraceCard(_trace: TraceFile): VirtualCard {
  throw new Error('trace card not implemented yet');
}
