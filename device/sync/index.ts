export { SyncClient, type SyncClientOptions } from './client.js';
export { syncOptionsFromConfig } from './from-config.js';
export type { SyncTransport, SyncTransportFactory, TransportHandlers, TransportParams } from './transport.js';
