import bcrypt from 'bcryptjs';

/**
 * bcrypt (`$2b$`) for the NATS cluster's user file (sync-server/nats-auth.ts): NATS accepts plain or bcrypt
 * passwords only, and Node's crypto has no bcrypt. bcryptjs is the kept, dependency-free implementation (pure
 * JavaScript, so no native build); nats-server itself checks its hashes in test/integration/cluster-nats-users.test.ts.
 */

/** Default cost: NATS checks the hash on every connection, so each reconnect costs the node this much CPU (docs/cluster.md). */
export const BCRYPT_COST = 10;

/** A fresh `$2b$` hash of `password` (random 16-byte salt). */
export function bcryptHash(password: string, cost = BCRYPT_COST): string {
  return bcrypt.hashSync(password, bcrypt.genSaltSync(cost));
}

/** Does `password` match the `$2a$`/`$2b$`/`$2y$` hash? */
export function bcryptVerify(password: string, hash: string): boolean {
  return /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash) && bcrypt.compareSync(password, hash);
}
