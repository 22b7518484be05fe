/**
 * The one place the back office imports the devices' pure decision core from
 * (protocol/rules/). Settlement runs every tap through this very `decide`: one
 * implementation of the fare rules, never a second copy.
 */
import { decide, localTime, type BusContext, type Tap, type TokenMarks, type View } from '../../protocol/rules/index.js';
import type { Tariff } from '../../protocol/rules-schema.js';

export { decide, localTime, type Tap, type TokenMarks, type View };

/** The context `decide` takes for one bus tap: the published tariff, the entry's device, route and vehicle, the operator's time zone. */
export function busConfig(device: string, route: string, vehicle: string, tariff: Tariff, timeZone: string): BusContext {
  return { device: { id: device, kind: 'bus', timeZone, route, vehicle }, tariff };
}
