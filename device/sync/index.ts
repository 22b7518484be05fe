export { SyncClient, type SyncClientOptions, type SyncStore } from './client.js';
export { syncOptionsFromConfig, defaultScopes } from './from-config.js';
export type { SyncTransport, SyncTransportFactory, TransportHandlers, TransportParams } from './transport.js';
