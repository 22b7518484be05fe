import { Command } from 'commander';
import { isRcError } from '../protocol/errors.js';
import { runScriptedDemo } from './demo.js';
import { runInteractiveDemo } from './interactive.js';

// rc-demo: the demo behind `npm start`. It starts a sync-server and devices in
// one process, so it lives outside device/ (which never imports the server).
const program = new Command('rc-demo')
  .description('the demo (npm start): a sync-server, a bus validator and a school turnstile in one process, scripted taps of virtual cards')
  .option('--json', 'one JSON object per tap')
  .option('--interactive', 'tap demo cards by key instead of the script')
  .option('--verbose', 'show the device and server logs (stderr)')
  .option('--serve', 'after the script, keep the server up for a browser (console, cabinet, portal) until Ctrl+C (default in a terminal)')
  .option('--no-serve', 'end after the script, also in a terminal')
  .showHelpAfterError()
  .action(async (opts: { json?: boolean; interactive?: boolean; verbose?: boolean; serve?: boolean }) => {
    const out = { line: (s: string) => void process.stdout.write(`${s}\n`) };
    const logLevel = opts.verbose ? 'info' : 'silent';
    // in a terminal a person is there to open the pages; piped (CI, scripts) the demo ends after the script as it always did
    const serve = opts.serve ?? (process.stdout.isTTY === true && opts.json !== true);
    const untilInterrupted = () => new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    try {
      if (opts.interactive) await runInteractiveDemo({ out, logLevel });
      else await runScriptedDemo({ out, json: opts.json === true, logLevel, ...(serve ? { stay: untilInterrupted } : {}) });
    } catch (e) {
      process.stderr.write(`demo failed: ${isRcError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    }
  });

await program.parseAsync(process.argv);
