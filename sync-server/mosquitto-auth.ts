import { createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { ErrorCode, RcError } from '../protocol/errors.js';
import { ROOT, topics } from '../protocol/wire/topics.js';

/**
 * Per-device credentials and ACLs for an external Mosquitto (2.0.x):
 * the server writes a `password_file` and an `acl_file` that Mosquitto is
 * started with (`allow_anonymous false`), and sends Mosquitto SIGHUP to reload
 * them whenever a device is enrolled, rotated or revoked.
 *
 * Passwords are Mosquitto's own `$7$` format (PBKDF2-SHA512, 101 iterations,
 * 12-byte salt, 64-byte hash — byte-identical to what `mosquitto_passwd`
 * writes), computed when the server still holds the clear password (enrol,
 * rotate) and kept in the registry; the clear password is never stored.
 */

export const MOSQ_ITERATIONS = 101;

export function mosquittoHash(password: string, salt: Buffer = randomBytes(12), iterations = MOSQ_ITERATIONS): string {
  const h = pbkdf2Sync(password, salt, iterations, 64, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${h.toString('base64')}`;
}

export function verifyMosquittoHash(password: string, stored: string): boolean {
  const m = /^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m) return false;
  return mosquittoHash(password, Buffer.from(m[2]!, 'base64'), Number(m[1])) === stored;
}

export interface BrokerUser {
  id: string;
  mosqHash: string;
  scopes: readonly string[];
}

/**
 * The server's own broker users on Mosquitto, one per purpose, each with only the topics it needs
 * (with use_username_as_clientid each is also one session): the publisher sends lists, rules and
 * fleet usage; the ingest reads devices' journals, status and list requests and acknowledges
 * journals. Both passwords derive from the server's one broker password (RC_BROKER_PASSWORD).
 */
export const SERVER_PURPOSES = ['publisher', 'ingest'] as const;
export type ServerPurpose = (typeof SERVER_PURPOSES)[number];

export interface ServerBrokerUser {
  purpose: ServerPurpose;
  user: string;
  password: string;
}

export function serverBrokerUsers(base: string, password: string): ServerBrokerUser[] {
  return SERVER_PURPOSES.map((purpose) => ({
    purpose,
    user: `${base}-${purpose}`,
    password: createHmac('sha256', password).update(`rc-broker-user/${purpose}`).digest('base64url'),
  }));
}

export function serverAclLines(purpose: ServerPurpose): string[] {
  if (purpose === 'publisher') return [`topic write ${ROOT}/lists/#`, `topic write ${ROOT}/config/#`, `topic write ${ROOT}/usage/#`];
  return [
    `topic read ${ROOT}/device/+/journal`,
    `topic read ${ROOT}/device/+/status`,
    `topic read ${ROOT}/device/+/request`,
    `topic write ${ROOT}/device/+/journal-ack`,
  ];
}

/** One of the server's users in the files: its hash, and its ACL lines (default: everything under rc/v1). */
export interface ServerFileUser {
  user: string;
  mosqHash: string;
  acl?: readonly string[];
}

export interface MosquittoFiles {
  passwordFile: string;
  aclFile: string;
  /** More users the operator wants in the files (e.g. a monitoring client), with their ACL lines. */
  extraUsers?: readonly ServerFileUser[];
  /** Mosquitto's pid file (its `pid_file` option) or a pid, for the SIGHUP reload. */
  pidFile?: string;
  pid?: number;
}

const asList = (s: ServerFileUser | readonly ServerFileUser[]): readonly ServerFileUser[] => (Array.isArray(s) ? s : [s as ServerFileUser]);

export function passwordFileText(server: ServerFileUser | readonly ServerFileUser[], devices: readonly BrokerUser[]): string {
  return [...asList(server).map((u) => `${u.user}:${u.mosqHash}`), ...devices.map((d) => `${d.id}:${d.mosqHash}`)].join('\n') + '\n';
}

/** The ACL: the server's users their purpose's topics (one user: everything under rc/v1); each device only its own topics and scopes. */
export function aclFileText(server: string | readonly ServerFileUser[], devices: readonly BrokerUser[]): string {
  const users = typeof server === 'string' ? [{ user: server, mosqHash: '' }] : server;
  const out = ['# Written by rc-sync-server; changes are overwritten. Reloaded with SIGHUP.'];
  for (const u of users) out.push(`user ${u.user}`, ...(u.acl ?? [`topic readwrite ${ROOT}/#`]), '');
  for (const d of devices) {
    out.push(
      `user ${d.id}`,
      `topic write ${topics.journal(d.id)}`,
      `topic write ${topics.status(d.id)}`,
      `topic write ${topics.request(d.id)}`,
      `topic read ${topics.journalAck(d.id)}`,
      `topic read ${ROOT}/config/+`,
      `topic read ${ROOT}/usage/+`,
      ...d.scopes.map((s) => `topic read ${ROOT}/lists/${s}/#`),
      '',
    );
  }
  return out.join('\n');
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
  // 0640: Mosquitto reads them after dropping to its own user; give the directory group mosquitto (setgid), see docs/provisioning.md
  writeFileSync(tmp, text, { mode: 0o640 });
  renameSync(tmp, file);
}

/** Write both files (atomically, 0640; hashes only, no clear password) and signal Mosquitto to reload them. provision.broker-files on failure. */
export function applyMosquittoFiles(files: MosquittoFiles, server: ServerFileUser | readonly ServerFileUser[], devices: readonly BrokerUser[]): void {
  const users = asList(server);
  try {
    writeAtomic(files.passwordFile, passwordFileText(users, devices));
    writeAtomic(files.aclFile, aclFileText(users, devices));
  } catch (e) {
    throw new RcError(ErrorCode.ProvisionBrokerFiles, `cannot write the Mosquitto password/ACL files: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      passwordFile: files.passwordFile,
      aclFile: files.aclFile,
    });
  }
  reloadMosquitto(files);
}

export function reloadMosquitto(files: MosquittoFiles): void {
  let pid = files.pid;
  if (pid === undefined && files.pidFile) {
    try {
      pid = Number(readFileSync(files.pidFile, 'utf8').trim());
    } catch {
      pid = undefined; // Mosquitto not started yet: it reads the files when it starts
    }
  }
  if (pid === undefined || !Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGHUP');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return; // not running: it reads the files when it starts
    throw new RcError(ErrorCode.ProvisionBrokerFiles, `cannot signal Mosquitto (pid ${pid}) to reload: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      pid,
    });
  }
}
