/**
 * A broker that never answers (a cluster node electing JetStream leaders may leave a SUBSCRIBE unanswered for ever)
 * must not hold the device's or the server's MQTT client: the wait is given up after `ms`, saying what it waited for.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
    t.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}
