import type { KeyObject } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../protocol/log.js';
import { isHsmKey, serverKeyScheme, type ServerTokenKey } from '../../protocol/token-hsm.js';
import { checkSigningKey, loadOrCreateSigningKey } from '../keys.js';
import { describeDatabase, openDatabase } from '../db/open.js';
import type { Db } from '../registry.js';
import { checkKeyScheme } from '../tokenize.js';
import { sqliteTuning } from '../db/sql.js';
import { databaseOptions } from './options.js';

export interface ServerRegistry {
  db: Db;
  /** The server's signing key: lists, configs, fleet usage, journal acks and reports are signed with it. */
  key: { privateKey: KeyObject; publicKeyPem: string };
  /** What imports, the console, the bank API and the cabinet tokenise cards with. */
  tokeniser: ReturnType<typeof tokeniser>;
  close(): void;
}

/**
 * The registry (DATA/registry.sqlite, or --database), migrated and checked against the card-token key, and the signing
 * key in DATA (made on first start), whichever database holds the registry (docs/postgres.md).
 */
export function openServerRegistry(o: { dataDir: string; database?: string; tokenKey: ServerTokenKey }, log: Logger): ServerRegistry {
  const spec = databaseOptions(o);
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 }); // the signing key lives there whichever database holds the registry
  const { db, migrated } = openDatabase(spec);
  try {
    if (spec.kind === 'postgres')
      log.info({ database: describeDatabase(spec), from: migrated?.from, applied: migrated?.applied }, 'PostgreSQL registry opened and migrated');
    checkKeyScheme(db, o.tokenKey.version, serverKeyScheme(o.tokenKey)); // a key version keeps the scheme its tokens were made with
  } catch (e) {
    db.close();
    throw e;
  }
  // durable acks: every commit fsyncs the WAL, so no journal-ack leaves before the entries it covers are on disk
  sqliteTuning(db, (d) => d.pragma('synchronous = FULL'));
  const key = loadOrCreateSigningKey(o.dataDir);
  if (key.created) log.info({ dataDir: o.dataDir }, 'signing key created (0600)');
  try {
    checkSigningKey(db, key.publicKeyPem); // instances on one registry sign with one key
  } catch (e) {
    db.close();
    // a key made just now and refused is not this data dir's: leave no file behind, so the next start (with a copy of
    // the registry's key in place) does not find a stranger's key there
    if (key.created) for (const f of ['signing-key.pem', 'signing-key.pub.pem']) rmSync(join(o.dataDir, f), { force: true });
    throw e;
  }
  return { db, key, tokeniser: tokeniser(o.tokenKey), close: () => db.close() };
}

// with the key in the token, imports derive there (one session, kept open: the token's owner closes it)
function tokeniser(k: ServerTokenKey) {
  return isHsmKey(k) ? k.hsm.deriver(k.version) : k;
}
