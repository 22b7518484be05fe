import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { generateSigningKey, loadPrivateKey, privateKeyPem, publicKeyPem } from '../protocol/wire/envelope.js';
import { createHash, createPublicKey } from 'node:crypto';
import { ErrorCode, RcError } from '../protocol/errors.js';
import type { Db } from './db/types.js';

/** The server's Ed25519 list-signing key: created at first start, file mode 0600. */
export function loadOrCreateSigningKey(dataDir: string): { privateKey: KeyObject; publicKeyPem: string; created: boolean } {
  const file = join(dataDir, 'signing-key.pem');
  let created = false;
  if (!existsSync(file)) {
    const { privateKey } = generateSigningKey();
    writeFileSync(file, privateKeyPem(privateKey), { mode: 0o600, flag: 'wx' });
    created = true;
  }
  chmodSync(file, 0o600);
  const privateKey = loadPrivateKey(readFileSync(file, 'utf8'));
  const pub = publicKeyPem(createPublicKey(privateKey));
  writeFileSync(join(dataDir, 'signing-key.pub.pem'), pub, { mode: 0o644 });
  return { privateKey, publicKeyPem: pub, created };
}

/**
 * The registry remembers which signing key it was first opened with (the SHA-256 of the public key, meta 'signing-key')
 * and refuses another: instances sharing a PostgreSQL registry must share the key too, or the devices, which trust the
 * first key only, would refuse every list, config and ack the odd one signs.
 */
export function checkSigningKey(db: Db, publicKeyPem: string): void {
  const fingerprint = createHash('sha256').update(publicKeyPem.trim()).digest('hex');
  db.prepare("INSERT INTO meta(key, value) VALUES ('signing-key', ?) ON CONFLICT DO NOTHING").run(fingerprint);
  const kept = db.prepare("SELECT value FROM meta WHERE key = 'signing-key'").pluck().get() as string;
  if (kept !== fingerprint)
    throw new RcError(ErrorCode.ServerSigningKeyMismatch, 'this registry was made with another signing key than DATA/signing-key.pem', {
      registry: kept.slice(0, 16),
      dataDir: fingerprint.slice(0, 16),
    });
}
