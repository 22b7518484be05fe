import { defineConfig } from 'tsup';
import { buildCabinet, buildConsole, buildPortal } from './scripts/build-console.js';

// Three programs and the demo (npm start), one package. Runtime packages stay external (they are in
// "dependencies"), so native modules (better-sqlite3, smartcard, serialport)
// load from node_modules.
export default defineConfig({
  entry: {
    'rc-device': 'device/cli.ts',
    'rc-sync-server': 'sync-server/cli.ts',
    'rc-provision': 'provisioning/cli.ts',
    'rc-demo': 'demo/cli.ts',
    // the imports' worker thread (sync-server/import-thread.ts starts it from beside its own chunk)
    'import-worker': 'sync-server/import-worker.ts',
  },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  outDir: 'dist',
  clean: true,
  sourcemap: true,
  splitting: true,
  banner: { js: '#!/usr/bin/env node' },
  // the operator console (issue 12): its own browser bundle, served by rc-sync-server from dist/console/
  // and the cardholder's cabinet and the public portal (issue 15): dist/cabinet/, dist/portal/
  onSuccess: async () => {
    await buildConsole('dist/console', 'sync-server/console/web');
    await buildCabinet('dist/cabinet', 'sync-server/cabinet/web');
    await buildPortal('dist/portal', 'sync-server/portal/web');
  },
});
