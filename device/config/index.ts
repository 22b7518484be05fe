export * from './schema.js';
export { loadConfig, loadConfigFile, loadRules, migrateConfig, migrations, withRules } from './load.js';
export { formatProblem, type Problem } from './validate.js';
