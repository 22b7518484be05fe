import { ErrorCode, RcError } from '../../protocol/errors.js';
import { Config, CURRENT_CONFIG_SCHEMA, RulesFile } from './schema.js';
import { invalid, parseJsonText, readTextFile, validateOrThrow } from './validate.js';

/**
 * Config migrations: `migrations[n]` turns a schema-n config into schema n+1.
 * Only schema 1 exists today; when schema 2 comes, add `1: (c) => ({ ...c, schema: 2, … })`
 * and the loader upgrades old files in memory (the file on disk is left alone).
 */
export const migrations: Record<number, (c: Record<string, unknown>) => Record<string, unknown>> = {};

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

/** Bring a raw config up to the current schema (pure; throws config.too-new for a newer one). */
export function migrateConfig(raw: unknown, file = '<config>', text?: string): unknown {
  let v = schemaVersionOf(raw, file, text);
  if (v > CURRENT_CONFIG_SCHEMA) {
    throw new RcError(ErrorCode.ConfigTooNew, `${file}: config schema ${v} is newer than this software understands (${CURRENT_CONFIG_SCHEMA})`, {
      file,
      schema: v,
      supported: CURRENT_CONFIG_SCHEMA,
    });
  }
  let c = raw as Record<string, unknown>;
  while (v < CURRENT_CONFIG_SCHEMA) {
    const m = migrations[v];
    if (!m) throw new RcError(ErrorCode.ConfigInvalid, `${file}: no migration from config schema ${v}`, { file, schema: v });
    c = m(c);
    v++;
  }
  return c;
}

/**
 * Migrate and validate a parsed config. Throws RcError config.invalid naming the
 * file, the path (and line, when `text` is the file's JSON) and what is wrong;
 * config.too-new when the config is newer than the code.
 */
export function loadConfig(raw: unknown, file = '<config>', text?: string): Config {
  const migrated = migrateConfig(raw, file, text);
  // line numbers only make sense if nothing was migrated
  const sameShape = migrated === raw;
  return validateOrThrow(Config, migrated, file, ErrorCode.ConfigInvalid, sameShape ? text : undefined);
}

/** Read, parse, migrate and validate a config file (JSON). */
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
  const next = { ...cfg, ...(rules.tariff ? { tariff: rules.tariff } : {}), ...(rules.school ? { school: rules.school } : {}), ...(rules.canteen ? { canteen: rules.canteen } : {}) };
  return validateOrThrow(Config, next, file, ErrorCode.TariffInvalid);
}
