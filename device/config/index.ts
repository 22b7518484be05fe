export * from './schema.js';
export { loadConfig, loadConfigFile, loadRules, loadRulesFile, withDevice, withRules } from './load.js';
export { formatProblem, type Problem } from './validate.js';
