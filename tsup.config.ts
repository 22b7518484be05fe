import { defineConfig } from 'tsup';

// Three programs and the demo (npm start), one package. Runtime packages stay external (they are in
// "dependencies"), so native modules (better-sqlite3, smartcard, serialport)
// load from node_modules.
export default defineConfig({
  entry: {
    'rc-device': 'device/cli.ts',
    'rc-sync-server': 'sync-server/cli.ts',
    'rc-provision': 'provisioning/cli.ts',
    'rc-demo': 'demo/cli.ts',
    // the import worker thread, loaded by sync-server/import-worker.ts from next to the bundle
    'import-worker-thread': 'sync-server/import-worker-thread.ts',
  },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  outDir: 'dist',
  clean: true,
  sourcemap: true,
  splitting: true,
  banner: { js: '#!/usr/bin/env node' },
});
