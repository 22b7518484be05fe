import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { generateSigningKey, loadPrivateKey, privateKeyPem, publicKeyPem } from '../protocol/wire/envelope.js';
import { createPublicKey } from 'node:crypto';

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
