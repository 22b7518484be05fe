export * from './topics.js';
export * from './messages.js';
export * from './codec.js';
export * from './envelope.js';
export * from './chunking.js';
export * from './verify.js';
