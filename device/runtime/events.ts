import type { PassOutcome } from '../io/types.js';
import type { Direction } from '../../protocol/rules/types.js';
import type { TapReport } from './status.js';

/** A gate's outcome after an allowed tap, journaled as a follow-up event. */
export interface OutcomeReport {
  reader: string;
  /** The follow-up event's seq. */
  seq: number;
  tapSeq: number;
  outcome: PassOutcome;
  direction: Direction;
}

/** What a Runtime emits: `runtime.on('tap', (r) => …)`; or await `runtime.nextTap(reader)` / `runtime.nextOutcome(tapSeq)`. */
export interface RuntimeEvents {
  /** A tap decided, journaled and signalled. */
  tap: [TapReport];
  /** A gate's outcome journaled. */
  outcome: [OutcomeReport];
}
