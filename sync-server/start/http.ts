import type { Logger } from '../../protocol/log.js';
import { ErrorCode } from '../../protocol/errors.js';
import { bankTrust } from '../bank/banks.js';
import { findConsoleDir, registerConsole } from '../console/serve.js';
import { startListener, type Listening } from '../http/app.js';
import type { HttpContext } from '../http/route.js';
import { ROUTES, withPublicOnOperator } from '../http/routes/index.js';
import type { ServerMetrics } from '../metrics.js';
import { findWebDir, registerWeb } from '../portal/serve.js';
import type { Db } from '../registry.js';
import type { ServerOptions } from '../server.js';

// one route table, several listeners: the operator's API on loopback; the device-facing enrolment routes where devices
// reach them; the cabinet and the portal (--public-listen); the bank API (--bank-listen, mutual TLS)

export interface OperatorListener {
  url: string;
  /** What every listener's routes call, with the readiness and metrics of /healthz and /metrics. */
  ctx: HttpContext;
  /** The cabinet's and the portal's bundles (null: none served). */
  webDir: string | null;
  /** /healthz answers ready from now on (start-up is over). */
  markReady(): void;
  /** /healthz answers not ready, then the listener closes. */
  close(): Promise<void>;
}

/** The operator's listener on loopback: the API, the console, /healthz, /metrics, and the cabinet and portal when they have no listener of their own. */
export async function startOperatorListener(
  o: Pick<ServerOptions, 'httpPort' | 'consoleDir' | 'webDir' | 'publicListen'>,
  deps: { db: Db; routes: Omit<HttpContext, 'ops'>; metrics: ServerMetrics; log: Logger },
): Promise<OperatorListener> {
  const { db, metrics, log } = deps;
  let ready = false;
  const readable = () => {
    try {
      db.prepare('SELECT 1 FROM meta LIMIT 1').get();
      return true;
    } catch {
      return false;
    }
  };
  const ctx: HttpContext = { ...deps.routes, ops: { ready: () => ready && readable(), metrics: () => metrics.expose() } };
  const consoleDir = o.consoleDir === undefined ? findConsoleDir() : o.consoleDir;
  if (!consoleDir) log.warn({ code: ErrorCode.ServerConsoleMissing }, 'operator console not built (npm run build): the API runs without it');
  // the cabinet and the portal: on their own listener, or on the operator's when there is none (npm start: one port)
  const webDir = o.webDir === undefined ? findWebDir() : o.webDir;
  const http = await startListener(o.publicListen ? ROUTES : withPublicOnOperator(ROUTES), ctx, {
    listener: 'operator',
    host: '127.0.0.1',
    port: o.httpPort,
    bodyLimit: 1 << 20,
    log: log.child({ component: 'http' }),
    before: async (app) => {
      registerConsole(app, consoleDir);
      if (!o.publicListen) registerWeb(app, webDir);
    },
  });
  return {
    url: http.url,
    ctx,
    webDir,
    markReady: () => void (ready = true),
    close: async () => {
      ready = false;
      await http.close();
    },
  };
}

export interface OuterListeners {
  /** URL of the device-facing enrolment listener, when enrolListen was given. */
  enrolUrl: string | null;
  /** URL of the cabinet's and portal's listener, when publicListen was given. */
  publicUrl: string | null;
  /** URL of the bank listener (https, mutual TLS), when bankListen was given. */
  bankUrl: string | null;
  /** The bank listener (its trusted CAs no longer reloaded), the public one, the enrolment one. */
  close(): Promise<void>;
}

/** The listeners beyond the operator's, each when its option is given: enrolment, the cabinet and portal, the bank API. */
export async function startOuterListeners(
  o: Pick<ServerOptions, 'dataDir' | 'enrolListen' | 'enrolTls' | 'publicListen' | 'publicTls' | 'bankListen' | 'bankTls' | 'bank'>,
  deps: { db: Db; ctx: HttpContext; webDir: string | null; log: Logger },
): Promise<OuterListeners> {
  const { db, ctx, webDir, log } = deps;
  const httpLog = log.child({ component: 'http' });
  const enrolListener = o.enrolListen
    ? await startListener(ROUTES, ctx, {
        listener: 'enrol',
        ...o.enrolListen,
        bodyLimit: 64 * 1024,
        log: httpLog,
        ...(o.enrolTls ? { https: { cert: o.enrolTls.chain, key: o.enrolTls.key } } : {}),
      })
    : null;
  const publicListener = o.publicListen
    ? await startListener(ROUTES, ctx, {
        listener: 'public',
        ...o.publicListen,
        bodyLimit: 64 * 1024,
        log: httpLog,
        before: async (app) => registerWeb(app, webDir),
        ...(o.publicTls ? { https: { cert: o.publicTls.chain, key: o.publicTls.key } } : {}),
      }).catch(async (e: unknown) => {
        await enrolListener?.close();
        throw e;
      })
    : null;
  const bankListener = o.bankListen
    ? await startListener(ROUTES, ctx, {
        listener: 'bank',
        ...o.bankListen,
        bodyLimit: 16 * 1024,
        log: httpLog,
        https: {
          cert: o.bankTls!.chain,
          key: o.bankTls!.key,
          ca: bankTrust(db, o.dataDir),
          requestCert: true,
          rejectUnauthorized: true,
        },
      }).catch(async (e: unknown) => {
        await publicListener?.close();
        await enrolListener?.close();
        throw e;
      })
    : null;
  const trustTimer = bankListener ? reloadBankTrust(bankListener, o, db, log) : null;
  return {
    enrolUrl: enrolListener?.url ?? null,
    publicUrl: publicListener?.url ?? null,
    bankUrl: bankListener?.url ?? null,
    close: async () => {
      if (trustTimer) clearInterval(trustTimer);
      await bankListener?.close();
      await publicListener?.close();
      await enrolListener?.close();
    },
  };
}

/** Certificates banks bring from their own CA: trusted once registered, without a restart (checked every 5 s). */
function reloadBankTrust(listener: Listening, o: Pick<ServerOptions, 'dataDir' | 'bankTls' | 'bank'>, db: Db, log: Logger): NodeJS.Timeout {
  let trusted = JSON.stringify(bankTrust(db, o.dataDir));
  const timer = setInterval(() => {
    try {
      const now = bankTrust(db, o.dataDir);
      if (JSON.stringify(now) === trusted) return;
      trusted = JSON.stringify(now);
      listener.setTls({ cert: o.bankTls!.chain, key: o.bankTls!.key, ca: now });
      log.info({ cas: now.length }, 'bank listener: trusted client CAs reloaded');
    } catch (e) {
      log.error({ err: String(e) }, 'bank listener: trusted client CAs not reloaded');
    }
  }, o.bank?.refreshMs ?? 5000);
  timer.unref();
  return timer;
}
