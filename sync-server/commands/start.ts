import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { rootLogger } from '../../protocol/log.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../charging.js';
import { parseNatsFiles } from '../nats-auth.js';
import { startServer } from '../server.js';
import { loadTls, type TlsMaterial } from '../tls.js';
import { parseCabinetConfig } from '../cabinet/provider.js';
import { fail } from './client.js';
import { databaseOption } from './database.js';
import { pkcs11Options, serverTokenKey, type Pkcs11Opts } from './key.js';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new RcError(ErrorCode.ServerBadRequest, `not a port: ${v}`);
  return n;
}

export function register(program: Command): void {
  databaseOption(
    pkcs11Options(program.command('start'))
      .description('run the sync-server: registry, embedded (or external) MQTT broker, HTTP API on loopback')
      .option('--data <dir>', 'data directory (registry, signing key)', './rc-sync-data'),
    'migrated at start',
  )
    .option('--mqtt-port <n>', 'embedded broker port', '1883')
    .option(
      '--broker <url>',
      'use an external broker instead, e.g. mqtt://127.0.0.1:1883; several nodes of a clustered broker comma-separated (docs/cluster.md)',
    )
    .option('--http-port <n>', 'HTTP API port (127.0.0.1)', '7300')
    .option('--allow-anonymous-devices', 'embedded broker: also let clients without credentials connect (development only)')
    .option('--mosquitto-passwd <file>', 'external Mosquitto: password_file the server writes (per-device credentials)')
    .option('--mosquitto-acl <file>', 'external Mosquitto: acl_file the server writes (per-device topic rights)')
    .option('--mosquitto-pid-file <file>', 'external Mosquitto: its pid_file, to SIGHUP it after a change')
    .option(
      '--nats-auth <file>',
      'NATS cluster: the authorization file every node includes; the server writes its users (bcrypt) and permissions (docs/cluster.md)',
    )
    .option(
      '--nats-pid-file <file>',
      "NATS cluster: a node's pid_file on this host, to SIGHUP it after a change (repeat for each node)",
      collect,
      [] as string[],
    )
    .option(
      '--nats-reload-command <cmd>',
      'NATS cluster: run (sh -c, RC_NATS_AUTH_FILE set) after every change, e.g. to copy the file to the other nodes and reload them',
    )
    .option(
      '--shared-ingest',
      'several instances on one PostgreSQL and one Mosquitto: journals and status through a shared subscription ($share/rc-ingest-HASH/…, named from the ingest user’s broker password), each upload to one instance (docs/postgres.md)',
    )
    .option('--public-broker-url <url>', 'broker URL handed to enrolled devices (default: the one the server uses)')
    .option('--public-listen <host:port>', "the cardholder's cabinet and the public portal here (HTTPS with --tls-*); without it they are on the operator port")
    .option('--cabinet <file>', "the cabinet's identity provider (JSON: ESIA or OpenID Connect, see the README's \"Cardholder's cabinet\")")
    .option('--enrol-listen <host:port>', 'device-facing enrolment endpoint (enrol, rotate, whoami only), e.g. 0.0.0.0:7301')
    .option('--tls-cert <file>', 'TLS: the server certificate (PEM) devices see on mqtts and on the enrolment listener')
    .option('--tls-key <file>', 'TLS: its private key (PEM, 0600)')
    .option('--tls-ca <file>', 'TLS: the CA that signed it; devices pin it (enrolment tokens carry its fingerprint)')
    .option('--broker-listen <host:port>', 'embedded broker: MQTT over TLS for devices here, e.g. 10.0.0.5:8883 (needs --tls-*)')
    .option('--enrol-tls-cert <file>', 'enrolment listener: another certificate than --tls-cert (signed by the same --tls-ca)')
    .option('--enrol-tls-key <file>', 'enrolment listener: its key')
    .option('--bank-listen <host:port>', 'bank API over mutual TLS (client certificates of rc-sync-server bank add; needs --tls-*), e.g. 0.0.0.0:7443')
    .option('--day-ends-at <HH:MM>', 'settlement: local time at which a service day ends (transit often uses 04:00)', '00:00')
    .option('--time-zone <tz>', 'settlement: IANA time zone of service days and quota months', 'Europe/Moscow')
    .option('--charge-attempts <n>', 'charging: attempts of a declined charge before the card is stop-listed', String(DEFAULT_RETRY.attempts))
    .option('--charge-retry-days <d>', 'charging: days over which those attempts are spread', String(DEFAULT_RETRY.overDays))
    .option('--token-key-version <n>', 'card-token key version in the token to use (default: the newest)')
    .option('--smtp-url <url>', "guardians' e-mail: SMTP server, smtp://user:pass@host:587 or smtps://host:465 (without it e-mails wait in the outbox)")
    .option('--smtp-from <address>', "guardians' e-mail: the From address")
    .option('--quiet-hours <HH:MM-HH:MM>', 'guardians: no entry/exit/meal messages in these local hours (a guardian may set their own)')
    .option('--absent-by <HH:MM|off>', 'guardians: "not arrived by" time on school days', '09:00')
    .option('--dev-token-key', 'without --pkcs11-* or RC_TOKEN_KEY, use the public development key (demo and tests only)')
    .action(
      async (
        opts: Pkcs11Opts & {
          tokenKeyVersion?: string;
          devTokenKey?: boolean;
          dayEndsAt: string;
          timeZone: string;
          chargeAttempts: string;
          chargeRetryDays: string;
          data: string;
          database?: string;
          mqttPort: string;
          broker?: string;
          httpPort: string;
          allowAnonymousDevices?: boolean;
          mosquittoPasswd?: string;
          mosquittoAcl?: string;
          mosquittoPidFile?: string;
          natsAuth?: string;
          natsPidFile: string[];
          natsReloadCommand?: string;
          publicBrokerUrl?: string;
          enrolListen?: string;
          publicListen?: string;
          cabinet?: string;
          tlsCert?: string;
          tlsKey?: string;
          tlsCa?: string;
          brokerListen?: string;
          enrolTlsCert?: string;
          enrolTlsKey?: string;
          bankListen?: string;
          smtpUrl?: string;
          smtpFrom?: string;
          quietHours?: string;
          absentBy: string;
          sharedIngest?: boolean;
        },
      ) => {
        const log = rootLogger().child({ component: 'sync-server' });
        try {
          const tokenKey = serverTokenKey(opts, log);
          const tls = tlsOptions(opts);
          if (opts.enrolListen && !tls.enrolTls) log.warn({ enrolListen: opts.enrolListen }, 'enrolment listener without TLS: behind a TLS proxy only');
          const s = await startServer({
            dataDir: opts.data,
            ...(opts.database ? { database: opts.database } : {}),
            mqttPort: port(opts.mqttPort),
            brokerUrl: opts.broker,
            ...(opts.sharedIngest ? { sharedIngest: true } : {}),
            httpPort: port(opts.httpPort),
            deviceAuth: { allowAnonymous: opts.allowAnonymousDevices === true },
            ...(opts.mosquittoPasswd || opts.mosquittoAcl
              ? {
                  mosquitto: {
                    passwordFile: opts.mosquittoPasswd ?? fail2('--mosquitto-passwd'),
                    aclFile: opts.mosquittoAcl ?? fail2('--mosquitto-acl'),
                    ...(opts.mosquittoPidFile ? { pidFile: opts.mosquittoPidFile } : {}),
                  },
                  brokerUsername: 'rc-sync-server',
                  // the server's own Mosquitto password: from the environment, else a fresh one each start (its hash goes into the password file)
                  brokerPassword: process.env.RC_BROKER_PASSWORD ?? randomBytes(18).toString('base64url'),
                }
              : {}),
            ...natsOptions(opts),
            ...(opts.publicBrokerUrl ? { publicBrokerUrl: opts.publicBrokerUrl } : {}),
            ...(opts.enrolListen ? { enrolListen: hostPort(opts.enrolListen, '--enrol-listen') } : {}),
            ...(opts.publicListen ? { publicListen: hostPort(opts.publicListen, '--public-listen') } : {}),
            ...(opts.publicListen && tls.material ? { publicTls: tls.material } : {}),
            ...(opts.cabinet ? { cabinet: { config: parseCabinetConfig(JSON.parse(readFileSync(opts.cabinet, 'utf8'))) } } : {}),
            ...(tls.enrolTls ? { enrolTls: tls.enrolTls } : {}),
            ...(opts.bankListen ? { bankListen: hostPort(opts.bankListen, '--bank-listen'), ...(tls.material ? { bankTls: tls.material } : {}) } : {}),
            ...(tls.material && opts.brokerListen ? { brokerTls: { listen: hostPort(opts.brokerListen, '--broker-listen'), material: tls.material } } : {}),
            ...(tls.material && opts.broker ? { brokerCa: tls.material.ca } : {}),
            settlement: { dayEndsAt: opts.dayEndsAt, timeZone: opts.timeZone },
            chargeRetry: retryPolicy(opts.chargeAttempts, opts.chargeRetryDays),
            notify: {
              ...(opts.smtpUrl ? { smtpUrl: opts.smtpUrl } : {}),
              ...(opts.smtpFrom ? { from: opts.smtpFrom } : {}),
              ...(opts.quietHours ? { quietHours: quietHours(opts.quietHours) } : {}),
              absentBy: opts.absentBy === 'off' ? null : opts.absentBy,
              timeZone: opts.timeZone,
            },
            tokenKey,
            log,
          });
          process.stdout.write(`rc-sync-server: MQTT ${s.mqttUrl}${opts.broker ? ' (external)' : ' (embedded)'}, HTTP ${s.httpUrl}, data ${opts.data}\n`);
          if (s.mqttsUrl) process.stdout.write(`rc-sync-server: MQTT over TLS on ${s.mqttsUrl}\n`);
          process.stdout.write(`rc-sync-server: devices get broker ${s.publicBrokerUrl}\n`);
          if (s.enrolUrl) process.stdout.write(`rc-sync-server: device enrolment on ${s.enrolUrl}\n`);
          if (s.bankUrl) process.stdout.write(`rc-sync-server: bank API (mutual TLS) on ${s.bankUrl}\n`);
          // shown once, on the terminal only (never logged): the registry keeps only its scrypt hash
          if (s.firstAdmin)
            process.stdout.write(
              `rc-sync-server: first account created: user ${s.firstAdmin.name}, password ${s.firstAdmin.password} (shown once; change it with rc-sync-server user passwd ${s.firstAdmin.name})\n`,
            );
          process.stdout.write(`rc-sync-server: admin API token for the local CLI in ${s.adminTokenFile}\n`);
          const stop = () => void s.close().then(() => process.exit(0));
          // a leader whose lock connection failed stopped its leader-only jobs: it ends, its service manager starts it
          // again as a follower (docs/postgres.md "Several instances"); 75 = EX_TEMPFAIL
          s.leadership.on('lost', () => void s.close().then(() => process.exit(75)));
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        } catch (e) {
          fail(e, false);
          process.exit(1);
        }
      },
    );
}

function retryPolicy(attempts: string, days: string): RetryPolicy {
  const p = { attempts: Number(attempts), overDays: Number(days) };
  if (!Number.isInteger(p.attempts) || p.attempts < 1 || !Number.isFinite(p.overDays) || p.overDays < 0)
    throw new RcError(ErrorCode.ServerBadRequest, `--charge-attempts must be a whole number >= 1 and --charge-retry-days a number >= 0`, p);
  return p;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/**
 * --nats-*: the server keeps a NATS cluster's users (nats-auth.ts), with its own two users (publisher, ingest) like with
 * Mosquitto; their password comes from RC_BROKER_PASSWORD (the same on every start: the nodes may reload later than the server
 * connects) or is fresh each start. Not together with --mosquitto-*: one broker's users.
 */
function natsOptions(o: {
  broker?: string;
  natsAuth?: string;
  natsPidFile: string[];
  natsReloadCommand?: string;
  mosquittoPasswd?: string;
  mosquittoAcl?: string;
}) {
  if (!o.natsAuth) {
    if (o.natsPidFile.length || o.natsReloadCommand)
      throw new RcError(ErrorCode.ServerBadRequest, '--nats-pid-file and --nats-reload-command need --nats-auth');
    return {};
  }
  if (o.mosquittoPasswd || o.mosquittoAcl)
    throw new RcError(ErrorCode.ServerBadRequest, '--nats-auth and --mosquitto-*: the server keeps the users of one broker');
  return {
    nats: parseNatsFiles({ authFile: o.natsAuth, pidFiles: o.natsPidFile, ...(o.natsReloadCommand ? { reloadCommand: o.natsReloadCommand } : {}) }),
    brokerUsername: 'rc-sync-server',
    brokerPassword: process.env.RC_BROKER_PASSWORD ?? randomBytes(18).toString('base64url'),
  };
}

function fail2(opt: string): never {
  throw new RcError(ErrorCode.ServerBadRequest, `${opt} is needed too: Mosquitto gets both a password file and an ACL file`);
}

/** --tls-* read and checked (server.tls-files), and which certificate the enrolment listener presents. */
function tlsOptions(o: {
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  brokerListen?: string;
  enrolListen?: string;
  enrolTlsCert?: string;
  enrolTlsKey?: string;
}): { material: TlsMaterial | null; enrolTls: TlsMaterial | null } {
  const any = o.tlsCert || o.tlsKey || o.tlsCa;
  if (o.brokerListen && !any)
    throw new RcError(
      ErrorCode.ServerTlsFiles,
      '--broker-listen is MQTT over TLS: give --tls-cert, --tls-key and --tls-ca (rc-sync-server tls init makes them)',
    );
  if (!o.enrolTlsCert !== !o.enrolTlsKey) throw new RcError(ErrorCode.ServerTlsFiles, '--enrol-tls-cert and --enrol-tls-key go together');
  if (o.enrolTlsCert && !o.tlsCa) throw new RcError(ErrorCode.ServerTlsFiles, '--enrol-tls-cert needs --tls-ca (the CA enrolment tokens pin)');
  const material = any ? loadTls({ cert: o.tlsCert, key: o.tlsKey, ca: o.tlsCa }) : null;
  const enrolTls = !o.enrolListen ? null : o.enrolTlsCert ? loadTls({ cert: o.enrolTlsCert, key: o.enrolTlsKey, ca: o.tlsCa }) : material;
  return { material, enrolTls };
}

function hostPort(v: string, opt: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(v);
  if (!m) throw new RcError(ErrorCode.ServerBadRequest, `${opt} wants host:port, not ${v}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: port(m[2]!) };
}

function quietHours(v: string): { from: string; to: string } {
  const m = /^(\d\d:\d\d)-(\d\d:\d\d)$/.exec(v);
  if (!m) throw new RcError(ErrorCode.ServerBadRequest, `--quiet-hours wants HH:MM-HH:MM, not ${v}`);
  return { from: m[1]!, to: m[2]! };
}
