import { ErrorCode, RcError } from '../../protocol/errors.js';
import { Config, CURRENT_CONFIG_SCHEMA, RulesFile } from './schema.js';
import { invalid, parseJsonText, readTextFile, validateOrThrow } from './validate.js';

function schemaVersionOf(raw: unknown, file: string, text?: string): number {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    invalid(ErrorCode.ConfigInvalid, file, [{ path: '', message: 'expected a JSON object', line: 1, column: 1 }]);
  }
  const v = (raw as Record<string, unknown>).schema;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    return validateOrThrow(Config, raw, file, ErrorCode.ConfigInvalid, text) && 0; // reports "schema" with its line
  }
  return v;
}

/**
 * Validate a parsed config. Throws RcError config.invalid naming the file, the
 * path (and line, when `text` is the file's JSON) and what is wrong;
 * config.too-new when the config's schema is newer than the code. Only schema 1
 * exists: when schema 2 comes, the loader upgrades older files in memory here.
 */
export function loadConfig(raw: unknown, file = '<config>', text?: string): Config {
  const v = schemaVersionOf(raw, file, text);
  if (v > CURRENT_CONFIG_SCHEMA) {
    throw new RcError(ErrorCode.ConfigTooNew, `${file}: config schema ${v} is newer than this software understands (${CURRENT_CONFIG_SCHEMA})`, {
      file,
      schema: v,
      supported: CURRENT_CONFIG_SCHEMA,
    });
  }
  return validateOrThrow(Config, raw, file, ErrorCode.ConfigInvalid, text);
}

/** Read, parse and validate a config file (JSON). */
export function loadConfigFile(file: string): Config {
  const text = readTextFile(file, ErrorCode.ConfigNotFound);
  return loadConfig(parseJsonText(text, file, ErrorCode.ConfigInvalid), file, text);
}

/** A rules file (tariff / school / canteen) as the server publishes it; errors are config.tariff-invalid. */
export function loadRules(raw: unknown, file = '<rules>', text?: string): RulesFile {
  return validateOrThrow(RulesFile, raw, file, ErrorCode.TariffInvalid, text);
}

/** Replace the rules of a config with published ones (what the sync client does on a rules update). */
export function withRules(cfg: Config, rules: RulesFile, file = '<rules>'): Config {
  const next = {
    ...cfg,
    ...(rules.tariff ? { tariff: rules.tariff } : {}),
    ...(rules.school ? { school: rules.school } : {}),
    ...(rules.canteen ? { canteen: rules.canteen } : {}),
    ...(rules.partners ? { partners: rules.partners } : {}),
  };
  return validateOrThrow(Config, next, file, ErrorCode.TariffInvalid);
}

/**
 * The same config with some device fields replaced, kind kept (a fixture config given
 * another device id). A spread `{ ...cfg, device: { ...cfg.device, id } }` of the
 * kind-discriminated union loses which kind goes with which rules; this keeps it.
 */
export function withDevice<C extends Config>(cfg: C, patch: { id?: string; timeZone?: string }): C {
  return { ...cfg, device: { ...cfg.device, ...patch } } as C;
}
