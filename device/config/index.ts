export * from './schema.js';
export { loadConfig, loadConfigFile, loadRules, withRules } from './load.js';
