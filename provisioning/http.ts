import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { connect as tlsConnect, type DetailedPeerCertificate } from 'node:tls';
import type { z } from 'zod';
import { ErrorCode, RcError } from '../protocol/errors.js';
import { answerError, exchangeJson, parseAnswer } from '../protocol/http-client.js';
import { certPin, derToPem } from '../protocol/tls-pin.js';

const hostOf = (url: URL) => url.hostname.replace(/^\[|\]$/g, '');

/**
 * First contact: a TLS handshake (nothing sent) to find, in the chain the server presents, the CA certificate
 * whose pin the enrolment token carries. provision.tls-pin-mismatch when there is none (or no TLS at all).
 */
export async function fetchPinnedCa(server: string, pin: string, timeoutMs = 15_000): Promise<string> {
  const url = new URL(server);
  if (url.protocol !== 'https:')
    throw new RcError(ErrorCode.ProvisionTlsPin, `the enrolment token pins a CA, so the server must be https://, not ${url.protocol}//`, { server });
  const host = hostOf(url);
  return new Promise((resolve, reject) => {
    // unverified on purpose: only to read the chain; the request itself goes over a verified connection
    const s = tlsConnect({ host, port: Number(url.port || 443), rejectUnauthorized: false, ...(isIP(host) ? {} : { servername: host }), timeout: timeoutMs });
    s.once('timeout', () => s.destroy(new Error('timed out')));
    s.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new RcError(
          e.code === 'ECONNREFUSED' || e.code === 'EHOSTUNREACH' || e.message === 'timed out'
            ? ErrorCode.ProvisionServerUnreachable
            : ErrorCode.ProvisionTlsPin,
          `no TLS handshake with ${server} (${e.code ?? e.message})`,
          { server },
        ),
      ),
    );
    s.once('secureConnect', () => {
      let c: DetailedPeerCertificate | undefined = s.getPeerCertificate(true);
      const seen = new Set<string>();
      let found: string | null = null;
      while (c?.raw && !seen.has(c.fingerprint256)) {
        seen.add(c.fingerprint256);
        if (certPin(c.raw) === pin) found = derToPem(c.raw);
        c = c.issuerCertificate;
      }
      s.end();
      if (found) resolve(found);
      else
        reject(
          new RcError(ErrorCode.ProvisionTlsPin, `${server} presents no certificate of the CA the enrolment token pins: nothing was sent to it`, { server }),
        );
    });
  });
}

/**
 * The device's calls to the sync-server. A network failure becomes
 * provision.server-unreachable; an error answer becomes its RcError (the
 * server's code); an answer that does not match the schema server.bad-request.
 */
export async function call<T>(
  server: string,
  method: 'GET' | 'POST',
  path: string,
  schema: z.ZodType<T>,
  body?: unknown,
  timeoutMs = 15_000,
  trust?: { ca: string },
): Promise<T> {
  let url: URL;
  try {
    url = new URL(path, server);
  } catch {
    throw new RcError(ErrorCode.ProvisionServerUnreachable, `not a server URL: ${server}`, { server });
  }
  if (trust && url.protocol !== 'https:')
    throw new RcError(ErrorCode.ProvisionTlsPin, `this device pinned the server's CA, so the server must be https://, not ${url.protocol}//`, { server });
  const req = url.protocol === 'https:' ? httpsRequest : httpRequest;
  // a pinned CA is the only one trusted; the name is checked against the certificate as always
  const tlsOpts = trust ? { ca: trust.ca, rejectUnauthorized: true, agent: false as const } : {};
  const r = req(url, { method, headers: { 'content-type': 'application/json' }, timeout: timeoutMs, ...tlsOpts });
  r.on('timeout', () => r.destroy(new Error('timed out')));
  const answer = await exchangeJson(
    r,
    {
      connection: (e) =>
        trust && e.code && /CERT|UNABLE_TO_|SELF_SIGNED|ALTNAME/.test(e.code)
          ? new RcError(ErrorCode.ProvisionTlsPin, `the certificate of ${server} is not trusted (${e.code}): nothing was sent`, { server, reason: e.code })
          : new RcError(
              ErrorCode.ProvisionServerUnreachable,
              `cannot reach the sync-server at ${server} (${e.code ?? e.message}); check the network and --server`,
              { server },
            ),
      notJson: (status) =>
        new RcError(ErrorCode.ProvisionServerUnreachable, `${server} answered HTTP ${status} without JSON: is it a Resident Card sync-server?`, { server }),
      broken: (e) => new RcError(ErrorCode.ProvisionServerUnreachable, `connection to ${server} broke: ${e.message}`, { server }),
    },
    (r) => {
      if (body !== undefined) r.write(JSON.stringify(body));
      r.end();
    },
  );
  if (answer.status >= 400) throw answerError(answer.status, answer.json);
  return parseAnswer(schema, answer.json, `the server's answer to ${path} does not match the protocol (versions differ?)`);
}
