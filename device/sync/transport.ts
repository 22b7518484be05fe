/**
 * What the sync client needs from a message transport, nothing more: the seam
 * between the client's logic and MQTT (like the server's `Publisher.setTransport`).
 * Every publish is at-least-once (MQTT QoS 1); subscriptions are at-most-once
 * (QoS 0: every server → device message is retained and comes again on the next
 * subscribe, see `createMqttTransport`). The client tolerates duplicates and
 * gaps. Production uses `createMqttTransport`; tests can pass an in-memory one.
 */
export interface SyncTransport {
  readonly connected: boolean;
  /** The broker URL of the current (or last tried) connection, when the transport has several (failover). */
  readonly url?: string;
  /** Try to connect again after a close (the client owns the backoff). */
  reconnect(): void;
  /** Drop the current connection as if the broker had (a close follows; the client then reconnects as after any loss). */
  drop?(): void;
  subscribe(topics: readonly string[]): Promise<void>;
  /** Fire and forget: a chunk no longer needed, or a download abandoned. */
  unsubscribe(topics: readonly string[]): void;
  publish(topic: string, payload: Buffer, retain: boolean): Promise<void>;
  /** Disconnect at once and stay disconnected. */
  close(): Promise<void>;
}

/** Connection parameters the client passes to a transport factory. */
export interface TransportParams {
  brokerUrl: string;
  /** More nodes of the same broker cluster: each new connection attempt after a lost or failed one goes to the next URL, round (issue 16). */
  failoverUrls?: readonly string[];
  clientId: string;
  username?: string;
  password?: string;
  /** mqtts: the CA pinned at enrolment (PEM) and the name the broker's certificate must carry (default: the URL's host). */
  tls?: { ca: string; servername?: string };
  /** Retained message the broker publishes for the device if its connection drops (the offline status). */
  will: { topic: string; payload: Buffer };
}

/** Callbacks a transport calls; `connect` on every (re)connection, `close` on every loss of it. */
export interface TransportHandlers {
  connect(): void;
  message(topic: string, payload: Buffer, retained: boolean): void;
  close(): void;
  error(e: Error): void;
}

/** Makes a transport and starts its first connection attempt. */
export type SyncTransportFactory = (params: TransportParams, on: TransportHandlers) => SyncTransport;
