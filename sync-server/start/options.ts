import { ErrorCode, RcError } from '../../protocol/errors.js';
import { parseDatabaseSpec, type DatabaseSpec } from '../db/open.js';
import type { ServerOptions } from '../server.js';

const WILDCARD = new Set(['0.0.0.0', '::', '']);

/** What devices are told about the broker: its URL (when it differs from the server's) and the CA they pin. */
export interface DevicesBroker {
  publicBrokerUrl?: string;
  brokerCa?: string;
}

/** Options that contradict each other, refused before anything opens; returns the broker URL devices get and the CA they pin. */
export function checkOptions(o: ServerOptions): DevicesBroker {
  if (o.brokerTls && o.brokerUrl)
    throw new RcError(ErrorCode.ServerBadRequest, 'an external broker (--broker) has its own TLS listener: --broker-listen is for the embedded one');
  if (o.bankListen && !o.bankTls)
    throw new RcError(ErrorCode.BankListenerTls, '--bank-listen is mutual TLS: give --tls-cert, --tls-key and --tls-ca (rc-sync-server tls init makes them)');
  if (o.sharedIngest && !o.brokerUrl)
    throw new RcError(
      ErrorCode.ServerBadRequest,
      '--shared-ingest needs an external broker with shared subscriptions (--broker, Mosquitto): the embedded one has none',
    );
  if (o.sharedIngest && o.nats)
    throw new RcError(
      ErrorCode.ServerBadRequest,
      "--shared-ingest: NATS's MQTT (2.9) has no shared subscriptions ($share); run several instances on Mosquitto (docs/postgres.md)",
    );
  databaseOptions(o); // a bad --database is refused here, before anything opens
  return devicesBroker(o);
}

/** The registry's database (--database, checked; docs/postgres.md). */
export function databaseOptions(o: Pick<ServerOptions, 'database' | 'dataDir'>): DatabaseSpec {
  return parseDatabaseSpec(o.database, o.dataDir);
}

/** The broker URL devices get, and the CA they pin; a TLS broker never hands out a plain URL. */
function devicesBroker(o: ServerOptions): DevicesBroker {
  const ca = o.brokerTls?.material.ca ?? o.brokerCa;
  const url = o.publicBrokerUrl;
  // e.g. mqtts://${RC_PUBLIC_HOST}:8883 with the variable unset: refused, rather than handed to every device
  // a clustered broker's nodes come comma-separated (docs/cluster.md): each must be such a URL, and all mqtts with a CA
  const each = url === undefined ? [] : url.split(',').map((u) => u.trim());
  const isBrokerUrl = (u: string) =>
    /^(mqtts?|tcp|wss?):\/\/[^/:\s,]+(:\d{1,5})?\/?$/.test(u) || /^(mqtts?|tcp|wss?):\/\/\[[0-9a-fA-F:.]+\](:\d{1,5})?\/?$/.test(u);
  if (url !== undefined && !each.every(isBrokerUrl))
    throw new RcError(ErrorCode.ServerBadRequest, `--public-broker-url is not a broker URL with a host: "${url}" (e.g. mqtts://10.0.0.5:8883)`, {
      publicBrokerUrl: url,
    });
  // without a public URL devices get the TLS listener's own address (as bound), which must be a real one
  if (!url && o.brokerTls && WILDCARD.has(o.brokerTls.listen.host))
    throw new RcError(
      ErrorCode.ServerBadRequest,
      `the broker listens on every address (${o.brokerTls.listen.host}): say which one devices use with --public-broker-url mqtts://HOST:PORT`,
    );
  if (ca && url && !each.every((u) => u.startsWith('mqtts://')))
    throw new RcError(ErrorCode.ServerBadRequest, `devices get the broker's CA, so the URL they get must be mqtts://, not ${url}`, { publicBrokerUrl: url });
  return { ...(url ? { publicBrokerUrl: url } : {}), ...(ca ? { brokerCa: ca } : {}) };
}
