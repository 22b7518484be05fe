/**
 * The one place the back office imports the devices' pure decision core from.
 * Settlement runs every tap through this very `decide`: one implementation of the
 * fare rules, never a second copy.
 */
// TODO(merge): protocol/rules — the decision core moves to protocol/rules/ and its config argument narrows to a protocol type;
// change this import (and `busConfig` below, if the config shape changes) and nothing else.
import { decide, localTime, type Decision, type Tap, type TokenMarks, type View } from '../../device/rules/index.js';
import type { Config } from '../../device/config/schema.js';
import type { Tariff } from '../../protocol/rules-schema.js';

export { decide, localTime, type Decision, type Tap, type TokenMarks, type View };

/** The config `decide` takes for one bus tap: the published tariff, the entry's device, route and vehicle, the operator's time zone. */
export function busConfig(device: string, route: string, vehicle: string, tariff: Tariff, timeZone: string): Config {
  return { schema: 1, device: { id: device, kind: 'bus', timeZone, route, vehicle }, tariff };
}
