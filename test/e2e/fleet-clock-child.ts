/**
 * Preloaded into a test's server process (`node --import tsx --import test/e2e/fleet-clock-child.ts dist/rc-sync-server.js …`)
 * when RC_TEST_CLOCK_OFFSET_MS is set: the process's wall clock runs that far ahead. The fleet
 * test restarts the server "two days later" this way to close the service day and charge it,
 * without waiting for midnight. Timers are untouched; only Date reads the shifted clock.
 */
const offset = Number(process.env.RC_TEST_CLOCK_OFFSET_MS ?? 0);
if (Number.isFinite(offset) && offset !== 0) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  class ShiftedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(realNow() + offset);
      else super(...(args as [string | number | Date]));
    }
    static override now(): number {
      return realNow() + offset;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
}
export {};
