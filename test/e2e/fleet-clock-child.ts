/**
 * Preloaded into the fleet rig's processes (`node --import tsx --import test/e2e/fleet-clock-child.ts dist/rc-….js …`)
 * when RC_TEST_CLOCK_OFFSET_MS is set: the process's wall clock runs that far ahead (or behind). The
 * fleet test runs the server, the enrolment and the buses on one clock pinned to noon of today's
 * service day (fleet-rig.ts `noonClock`), so its taps never straddle midnight, and restarts the server
 * "two days later" to close the service day and charge it, without waiting for midnight. Timers are
 * untouched; only Date reads the shifted clock.
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
