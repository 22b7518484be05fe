export * from './schema.js';
export { loadConfig, loadConfigFile, loadRules, loadRulesFile, migrateConfig, migrations, withRules } from './load.js';
export { formatProblem, type Problem } from './validate.js';
