/**
 * What start-up has opened, closed in the reverse order: by the running server's close(), or at once when a later
 * step of start-up fails (the listeners, the broker and the registry it had opened are not left behind).
 */
export class Shutdown {
  private readonly steps: (() => unknown)[] = [];

  /** Closed before everything added earlier, after everything added later. */
  add(close: () => unknown): void {
    this.steps.push(close);
  }

  /** Every step in reverse order; a step that throws stops the chain (as a close that fails should be seen). */
  async close(): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) await step();
  }

  /** Start-up failed with e: close what opened, past any step that fails, and throw e. */
  async abort(e: unknown): Promise<never> {
    for (let step = this.steps.pop(); step; step = this.steps.pop())
      await Promise.resolve()
        .then(step)
        .catch(() => undefined);
    throw e;
  }
}
