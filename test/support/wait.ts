/**
 * The one wait helper of the tests: wait for a condition, never for a fixed
 * time. The condition is polled (it reads state that changes on events the
 * test does not see directly: a store's list version, a peripheral's health, a
 * daemon's log) and the wait fails with what it was waiting for.
 *
 * Where the code under test emits an event, wait on the event instead (a
 * promise that resolves in the listener, `nextEvent`, a simulator's
 * `waitFor(pred)`); where the test drives time, use fake timers.
 */
export interface WaitOptions {
  /** Fail after this long. */
  timeoutMs: number;
  /** What the test waits for, in the failure message ("stop-list applied"); a function to add state at the time of failure. */
  what: string | (() => string);
  /** How often the condition is checked (default 10 ms). */
  everyMs?: number;
}

type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/**
 * Resolves with the condition's first truthy value. A condition that throws is
 * treated as not yet met; its last error is quoted when the wait times out.
 */
export async function waitFor<T>(cond: () => T | Promise<T>, opts: WaitOptions): Promise<Truthy<T>> {
  const t0 = Date.now();
  const every = opts.everyMs ?? 10;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as Truthy<T>;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() - t0 >= opts.timeoutMs) {
      const what = typeof opts.what === 'function' ? opts.what() : opts.what;
      const last = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${last}`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Like waitFor, and returns how long the wait took (for latency assertions: "applied within 1 s"). */
export async function timeWaitFor(cond: () => unknown, opts: WaitOptions): Promise<number> {
  const t0 = Date.now();
  await waitFor(cond, opts);
  return Date.now() - t0;
}
