import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { rootLogger } from '../../protocol/log.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../charging.js';
import { startServer } from '../server.js';
import { fail } from './client.js';
import { pkcs11Options, serverTokenKey, type Pkcs11Opts } from './key.js';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new RcError(ErrorCode.ServerBadRequest, `not a port: ${v}`);
  return n;
}

export function register(program: Command): void {
  pkcs11Options(program.command('start'))
    .description('run the sync-server: registry, embedded (or external) MQTT broker, HTTP API on loopback')
    .option('--data <dir>', 'data directory (registry, signing key)', './rc-sync-data')
    .option('--mqtt-port <n>', 'embedded broker port', '1883')
    .option('--broker <url>', 'use an external broker instead, e.g. mqtt://127.0.0.1:1883')
    .option('--http-port <n>', 'HTTP API port (127.0.0.1)', '7300')
    .option('--allow-anonymous-devices', 'embedded broker: also let clients without credentials connect (development only)')
    .option('--mosquitto-passwd <file>', 'external Mosquitto: password_file the server writes (per-device credentials)')
    .option('--mosquitto-acl <file>', 'external Mosquitto: acl_file the server writes (per-device topic rights)')
    .option('--mosquitto-pid-file <file>', 'external Mosquitto: its pid_file, to SIGHUP it after a change')
    .option('--public-broker-url <url>', 'broker URL handed to enrolled devices (default: the one the server uses)')
    .option('--enrol-listen <host:port>', 'device-facing enrolment endpoint (enrol, rotate, whoami only), e.g. 0.0.0.0:7301')
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
          mqttPort: string;
          broker?: string;
          httpPort: string;
          allowAnonymousDevices?: boolean;
          mosquittoPasswd?: string;
          mosquittoAcl?: string;
          mosquittoPidFile?: string;
          publicBrokerUrl?: string;
          enrolListen?: string;
          smtpUrl?: string;
          smtpFrom?: string;
          quietHours?: string;
          absentBy: string;
        },
      ) => {
        const log = rootLogger().child({ component: 'sync-server' });
        try {
          const tokenKey = serverTokenKey(opts, log);
          const s = await startServer({
            dataDir: opts.data,
            mqttPort: port(opts.mqttPort),
            brokerUrl: opts.broker,
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
            ...(opts.publicBrokerUrl ? { publicBrokerUrl: opts.publicBrokerUrl } : {}),
            ...(opts.enrolListen ? { enrolListen: hostPort(opts.enrolListen) } : {}),
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
          if (s.enrolUrl) process.stdout.write(`rc-sync-server: device enrolment on ${s.enrolUrl}\n`);
          const stop = () => void s.close().then(() => process.exit(0));
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

function fail2(opt: string): never {
  throw new RcError(ErrorCode.ServerBadRequest, `${opt} is needed too: Mosquitto gets both a password file and an ACL file`);
}

function hostPort(v: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(v);
  if (!m) throw new RcError(ErrorCode.ServerBadRequest, `--enrol-listen wants host:port, not ${v}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: port(m[2]!) };
}

function quietHours(v: string): { from: string; to: string } {
  const m = /^(\d\d:\d\d)-(\d\d:\d\d)$/.exec(v);
  if (!m) throw new RcError(ErrorCode.ServerBadRequest, `--quiet-hours wants HH:MM-HH:MM, not ${v}`);
  return { from: m[1]!, to: m[2]! };
}
