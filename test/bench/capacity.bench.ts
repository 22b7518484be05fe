// node --import tsx test/bench/capacity.bench.ts [--cards 20000] [--taps 2000] [--database sqlite|postgres]
//
// The per-unit figures docs/capacity.md scales up (issue 16): registry bytes per card (cards + benefits, as imported),
// journal bytes per entry on the wire (MQTT payloads the device sends, as the broker sees them) and in the registry,
// snapshot bytes per card (the retained chunks of the transit list). Embedded broker, one device. Last line: JSON.
// `--database postgres`: the registry on a private PostgreSQL 15 (test/support/rig/postgres.ts); sizes are then
// pg_database_size after a VACUUM FULL, so the per-card and per-entry figures count tables, indexes and TOAST.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { topics } from '../../protocol/wire/topics.js';
import { createDatabaseAt, requirePostgres, startPostgres } from '../support/rig/postgres.js';
import { benefitsCsv, cardsCsv, tokenOf } from '../support/registry-csv.js';
import { busConfig, importText, openDevice, startStack, tap } from '../support/sync-harness.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
}

const cards = Number(arg('cards', '20000'));
const taps = Number(arg('taps', '2000'));
const database = arg('database', 'sqlite');
if (database !== 'sqlite' && database !== 'postgres') throw new Error(`--database sqlite|postgres, not ${database}`);
if (database === 'postgres' && !requirePostgres('bench:capacity --database postgres')) process.exit(1);
const pg = database === 'postgres' ? await startPostgres() : null;
const stack = await startStack('embedded', { usageIntervalMs: 0, ...(pg ? { database: createDatabaseAt(pg.adminUrl) } : {}) });
const db = stack.server.db;
const pgBytes = () => {
  db.exec('VACUUM FULL'); // live rows only: the import's staging rows and old row versions are given back
  return Number(db.prepare('SELECT pg_database_size(current_database())').pluck().get());
};
const dbBytes = () => {
  if (pg) return pgBytes();
  db.pragma('wal_checkpoint(TRUNCATE)');
  const f = join(stack.dataDir, 'registry.sqlite');
  return statSync(f).size;
};
const pages = () => (pg ? pgBytes() : (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number));
try {
  const empty = pages();
  await importText(stack, 'cards', cardsCsv(0, cards));
  await importText(stack, 'benefits', benefitsCsv(0, cards, 'pensioner'));
  const withCards = pages();
  // the snapshot on the wire: every retained chunk and the manifest of the transit list
  const sniff = await mqtt.connectAsync(stack.brokerUrl, { protocolVersion: 4, username: 'rc-sync-server', password: stack.serverPassword });
  let snapshotBytes = 0;
  let journalBytes = 0;
  let journalMsgs = 0;
  sniff.on('message', (topic, payload) => {
    if (topic.startsWith('rc/v1/lists/transit/chunk/') || topic === topics.manifest('transit')) snapshotBytes += payload.length;
    if (topic.endsWith('/journal')) {
      journalBytes += payload.length;
      journalMsgs++;
    }
  });
  await sniff.subscribeAsync(['rc/v1/lists/transit/#', topics.allJournals()], { qos: 1 });
  await new Promise((r) => setTimeout(r, 2000));
  const dev = openDevice(stack, 'bus-cap-1');
  const cfg = busConfig('bus-cap-1');
  const T0 = Date.parse('2026-11-24T09:00:00+03:00');
  await new Promise((r) => setTimeout(r, 1000));
  const beforeJournal = pages();
  for (let i = 0; i < taps; i++) tap(dev, cfg, tokenOf(i % cards), T0 + i * 60_000);
  dev.client.notify();
  const deadline = Date.now() + 120_000;
  while (dev.store.ackedSeq() < taps && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const afterJournal = pages();
  await dev.close();
  await sniff.endAsync(true);
  const out = {
    bench: 'capacity',
    database,
    cards,
    taps,
    registryBytesPerCard: Math.round((withCards - empty) / cards),
    snapshotBytesPerCard: Number((snapshotBytes / cards).toFixed(2)),
    journalWireBytesPerEntry: Math.round(journalBytes / taps),
    journalMessages: journalMsgs,
    journalRegistryBytesPerEntry: Math.round((afterJournal - beforeJournal) / taps),
    registryFileBytes: dbBytes(),
  };
  console.log(
    `registry: ${out.registryBytesPerCard} B per card (cards + one benefit); transit snapshot on the wire: ${out.snapshotBytesPerCard} B per card; ` +
      `journal: ${out.journalWireBytesPerEntry} B per entry on the wire (${journalMsgs} messages), ${out.journalRegistryBytesPerEntry} B per entry in the registry`,
  );
  console.log(JSON.stringify(out));
} finally {
  await stack.close();
  await pg?.stop();
}
process.exit(0);
