export * from './schema.js';
export { loadConfig, loadConfigFile, loadRules, withDevice, withRules } from './load.js';
