import { ErrorCode, RcError } from '../../protocol/errors.js';
import { rootLogger, type Logger } from '../../protocol/log.js';
import { parsePeripheralConfig, resolveTiming, type PeripheralConfig } from './config.js';
import { ConsolePeripheral, type ConsoleOutput } from './console.js';
import type { SerialBinding } from './link.js';
import type { ProtocolDefinition } from './protocol.js';
import { rcp1 } from './protocols/rcp1.js';
import type { Peripheral } from './types.js';

/** Serial protocols by name. A vendor protocol: one file in ./protocols/ and one line here. */
export const PROTOCOLS: Readonly<Record<string, ProtocolDefinition>> = {
  rcp1,
};

export interface PeripheralDeps {
  log?: Logger;
  /** serialport binding for every serial peripheral (tests: a mock); default: the platform's. */
  binding?: SerialBinding;
  /** Where console peripherals print; default stdout. */
  consoleOut?: ConsoleOutput;
}

/**
 * Builds one peripheral from its config (validated here with zod: RcError
 * config.invalid on bad input). Nothing is opened until start().
 */
export function createPeripheral(raw: unknown, deps: PeripheralDeps = {}): Peripheral {
  const cfg: PeripheralConfig = parsePeripheralConfig(raw);
  const baseLog = deps.log ?? rootLogger();
  if (cfg.kind === 'console') {
    const name = cfg.name ?? 'console';
    return new ConsolePeripheral({
      name,
      passAfterMs: cfg.passAfterMs,
      passWindowMs: cfg.passWindowMs,
      ...(deps.consoleOut ? { out: deps.consoleOut } : {}),
      log: baseLog.child({ component: 'io', peripheral: name }),
    });
  }
  const proto = PROTOCOLS[cfg.protocol];
  if (!proto) {
    throw new RcError(ErrorCode.ConfigInvalid, `unknown peripheral protocol "${cfg.protocol}" (known: ${Object.keys(PROTOCOLS).join(', ')})`, {
      path: 'protocol',
    });
  }
  const name = cfg.name ?? `${cfg.kind}@${cfg.port}`;
  const ctx = {
    name,
    port: cfg.port,
    baudRate: cfg.baudRate,
    timing: resolveTiming(cfg.timing),
    log: baseLog.child({ component: 'io', peripheral: name, protocol: proto.name }),
    ...(deps.binding ? { binding: deps.binding } : {}),
  };
  const make = cfg.kind === 'turnstile' ? proto.createTurnstile : proto.createDisplay;
  if (!make) {
    throw new RcError(ErrorCode.ConfigInvalid, `protocol "${cfg.protocol}" has no ${cfg.kind} driver`, { path: 'kind' });
  }
  return make(ctx);
}
