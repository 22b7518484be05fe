import type { IClientOptions } from 'mqtt';

/**
 * An external broker given as several nodes of one cluster (issue 16): `--broker mqtt://a:1883,mqtt://b:1883`.
 * The server's MQTT clients connect to the first and, on every reconnect, move to the next (mqtt.js `servers`).
 */
export function brokerNodes(list: string): { first: string; urls: string[]; options: Pick<IClientOptions, 'servers'> } {
  const urls = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const first = urls[0] ?? list;
  if (urls.length < 2) return { first, urls: [first], options: {} };
  const servers = urls.map((s) => {
    const u = new URL(s);
    const protocol = u.protocol.replace(/:$/, '') as 'mqtt' | 'mqtts' | 'ws' | 'wss' | 'tcp';
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || (protocol === 'mqtts' ? 8883 : 1883)), protocol };
  });
  return { first, urls, options: { servers } };
}
