export * from './schema.js';
export { loadConfig, loadConfigFile, loadRules, withDevice, withRules } from './load.js';
export { formatProblem, type Problem } from './validate.js';
