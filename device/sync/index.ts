export { SyncClient, type SyncClientOptions } from './client.js';
export { syncOptionsFromConfig } from './from-config.js';
