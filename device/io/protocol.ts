import type { SerialPeripheralContext } from './serial-peripheral.js';
import type { Display, Turnstile } from './types.js';

/**
 * A serial protocol plugs in here: one file in device/io/protocols/ exporting
 * a ProtocolDefinition, and one line in device/io/factory.ts registering it.
 * A protocol that drives only turnstiles leaves createDisplay out (and vice
 * versa); the factory refuses a config that asks for the missing kind.
 */
export interface ProtocolDefinition {
  readonly name: string;
  createTurnstile?(ctx: SerialPeripheralContext): Turnstile;
  createDisplay?(ctx: SerialPeripheralContext): Display;
}
