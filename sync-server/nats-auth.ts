import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { ErrorCode, RcError } from '../protocol/errors.js';
import type { Logger } from '../protocol/log.js';

/**
 * Users and permissions of a NATS cluster carrying the sync protocol's MQTT (docs/cluster.md), from the one ACL
 * source: the Mosquitto ACL text the server writes (mosquitto-auth.ts `aclFileText`), translated line by line into
 * NATS subject permissions. The server writes the `authorization` block into the file every node `include`s
 * (bcrypt password hashes, sync-server/bcrypt.ts), atomically, and asks the nodes to reload it: SIGHUP to the pid
 * of each node's pid file, and/or an operator's command (e.g. one that copies the file to the other hosts and runs
 * `nats-server --signal reload=PID` there). The cluster rig (test/support/rig/cluster.ts) uses the same functions.
 */

export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
}

/** A user as it goes into the file: `password` is a bcrypt hash (the server) or plain text (the test rig's own users). */
export interface NatsUser {
  user: string;
  password: string;
}

/**
 * An MQTT topic filter as NATS subjects: `/` → `.`, `+` → `*`, a trailing `#` → the parent level and `.>`
 * (MQTT's `a/#` matches `a` too). A level holding `.` cannot be expressed (NATS would read it as two levels, and
 * the server's `+` subscriptions would no longer match it): provision.nats-subject.
 */
export function mqttFilterToSubjects(filter: string): string[] {
  const levels = filter.split('/').map((l) => (l === '+' ? '*' : l));
  const dotted = levels.find((l) => l.includes('.'));
  if (dotted !== undefined)
    throw new RcError(ErrorCode.ProvisionNatsSubject, `the topic level "${dotted}" holds a dot: it cannot be carried by a NATS broker`, {
      filter,
      level: dotted,
    });
  if (levels.at(-1) === '#') {
    const parent = levels.slice(0, -1).join('.');
    return parent ? [parent, `${parent}.>`] : ['>'];
  }
  return [levels.join('.')];
}

/** Every user may subscribe to `$MQTT.sub.>`: NATS 2.9 delivers a QoS 1 subscription through a JetStream consumer on it, under the client's own permissions. */
const QOS1_DELIVERY = '$MQTT.sub.>';

/**
 * Mosquitto ACL text (`user X` blocks of `topic read|write|readwrite FILTER`) → per-user NATS permissions.
 * MQTT clients cannot subscribe to `$MQTT.sub.>` themselves: the server refuses topics under `$MQTT` (docs/cluster.md).
 */
export function natsPermissions(aclText: string): Map<string, NatsPermissions> {
  const out = new Map<string, NatsPermissions>();
  let cur: NatsPermissions | null = null;
  for (const raw of aclText.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const u = /^user\s+(\S+)$/.exec(line);
    if (u) {
      cur = out.get(u[1]!) ?? { publish: [], subscribe: [QOS1_DELIVERY] };
      out.set(u[1]!, cur);
      continue;
    }
    const t = /^topic\s+(read|write|readwrite)\s+(\S+)$/.exec(line);
    if (!t || !cur) throw new RcError(ErrorCode.ProvisionNatsSubject, `ACL line not understood: ${line}`, { line });
    const subjects = mqttFilterToSubjects(t[2]!);
    if (t[1] !== 'write') cur.subscribe.push(...subjects);
    if (t[1] !== 'read') cur.publish.push(...subjects);
  }
  return out;
}

const q = (s: string) => JSON.stringify(s);

/** The `authorization` block: each user with its password (hash) and the permissions its ACL lines give (none: may only connect). */
export function natsAuthorizationText(users: readonly NatsUser[], aclText: string): string {
  const perms = natsPermissions(aclText);
  const lines = users.map((u) => {
    const p = perms.get(u.user) ?? { publish: [], subscribe: [QOS1_DELIVERY] };
    // an empty allow list would allow everything: a user without lines is denied everything instead
    const pub = p.publish.length ? `{ allow: [${p.publish.map(q).join(', ')}] }` : `{ deny: [">"] }`;
    const sub = `{ allow: [${p.subscribe.map(q).join(', ')}] }`;
    return `    { user: ${q(u.user)}, password: ${q(u.password)}, permissions: { publish: ${pub}, subscribe: ${sub} } }`;
  });
  return `# Written by rc-sync-server; changes are overwritten.\nauthorization {\n  users: [\n${lines.join(',\n')}\n  ]\n}\n`;
}

/** Where the server writes the NATS users, and how it makes the nodes reload them (`rc-sync-server start --nats-*`). */
export const NatsFiles = z
  .object({
    /** The file every node's configuration `include`s (deploy/cluster/nats-node.conf). */
    authFile: z.string().min(1),
    /** Pid files of the nodes on this host (their `pid_file`): each gets SIGHUP after a change. */
    pidFiles: z.array(z.string().min(1)).default([]),
    /** Run after every change (sh -c, with RC_NATS_AUTH_FILE set): for nodes on other hosts. */
    reloadCommand: z.string().min(1).optional(),
  })
  .strict();
export type NatsFiles = z.infer<typeof NatsFiles>;

/** The `--nats-*` options checked (config.invalid when they do not fit). */
export function parseNatsFiles(raw: unknown): NatsFiles {
  const r = NatsFiles.safeParse(raw);
  if (!r.success)
    throw new RcError(ErrorCode.ConfigInvalid, 'the --nats-* options do not fit', { issues: r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
  return r.data;
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
  // 0640 like Mosquitto's files: bcrypt hashes only, readable by the group the nodes run as
  writeFileSync(tmp, text, { mode: 0o640 });
  renameSync(tmp, file);
}

/** SIGHUP each node with a pid file here (a missing file or process: the node reads the file when it starts). */
export function reloadNatsNodes(files: NatsFiles): void {
  for (const pidFile of files.pidFiles) {
    let pid: number;
    try {
      pid = Number(readFileSync(pidFile, 'utf8').trim());
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      process.kill(pid, 'SIGHUP');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') continue;
      throw new RcError(ErrorCode.ProvisionBrokerFiles, `cannot signal NATS node (pid ${pid}) to reload: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
        pid,
        pidFile,
      });
    }
  }
}

/** The reload command runs in the background; one at a time, a change made meanwhile runs it once more afterwards. */
let running: Promise<void> | null = null;
let again = false;
function runReloadCommand(cmd: string, authFile: string, log?: Logger): void {
  if (running) {
    again = true;
    return;
  }
  running = new Promise<void>((res) => {
    const c = spawn('/bin/sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RC_NATS_AUTH_FILE: authFile } });
    let err = '';
    c.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    c.on('error', (e) => log?.error({ err: e.message }, 'NATS reload command could not start'));
    c.on('close', (code) => {
      if (code !== 0) log?.error({ code, stderr: err }, 'NATS reload command failed: the nodes may still hold the old users');
      res();
    });
  }).then(() => {
    running = null;
    if (again) {
      again = false;
      runReloadCommand(cmd, authFile, log);
    }
  });
}

/** Write the authorization file (atomically; hashes only) and ask the nodes to reload it. provision.broker-files on failure. */
export function applyNatsFiles(files: NatsFiles, users: readonly NatsUser[], aclText: string, log?: Logger): void {
  const text = natsAuthorizationText(users, aclText);
  try {
    writeAtomic(files.authFile, text);
  } catch (e) {
    throw new RcError(ErrorCode.ProvisionBrokerFiles, `cannot write the NATS authorization file: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      authFile: files.authFile,
    });
  }
  reloadNatsNodes(files);
  if (files.reloadCommand) runReloadCommand(files.reloadCommand, files.authFile, log);
}
