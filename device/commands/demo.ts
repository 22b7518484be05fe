import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { readMirCard } from '../emv/read.js';
import { resolveTokenKey } from '../emv/token-key.js';
import { openInProcessCard } from '../vcard/inprocess.js';
import type { VCardSpec } from '../vcard/spec.js';
import { isRcError } from '../../protocol/errors.js';
import { rootLogger } from '../../protocol/log.js';

/**
 * `rc-device demo --cards [--json]`: the EMV engineer's card-read demo: a few
 * virtual cards (synthetic numbers, and one real trace) read in process by the
 * very EMV code the device runs, one line each. The demo behind `npm start`
 * (a sync-server and devices in one process) is `rc-demo` (demo/), outside
 * device/: the device never imports the server.
 */

/** Real card (CB + Visa co-badge), anonymised: see test/fixtures/emv-traces/visa-cb-cobadge.json. */
const REAL_TRACE_VISA_CB = {
  exchanges: [
    {
      command: '00A404000E325041592E5359532E444446303100',
      response: '6F3B840E325041592E5359532E4444463031A529BF0C2661104F07A00000004210105002434287010161124F07A00000000310105004564953418701029000',
    },
    {
      command: '00A4040007A000000042101000',
      response: '6F378407A0000000421010A52C9F38189F66049F02069F03069F1A0295055F2A029A039C019F3704BF0C0EDF60020B1EDF6101039F4D020B1E9000',
    },
  ],
};

export const DEMO_CARDS: readonly { label: string; spec: VCardSpec }[] = [
  { label: 'Mir card', spec: { kind: 'emv', pan: '2200123456789019', expiry: '2028-12', psn: '01', gpoFormat: 1 } },
  {
    label: 'Mir card, PAN only in Track 2',
    spec: { kind: 'emv', pan: '2204098765432103', expiry: '2027-03', psn: '00', panLocation: 'track2-only', gpoFormat: 2 },
  },
  { label: 'Mir card, 19 digits, with PAR', spec: { kind: 'emv', pan: '2200123456789012341', expiry: '2030-06', par: 'V0010013820025123456789012345' } },
  {
    label: 'co-badged card, Visa listed first',
    spec: {
      kind: 'emv',
      pan: '2200554433221108',
      expiry: '2028-02',
      psn: '01',
      applications: [
        { aid: 'A0000000031010', label: 'VISA', priority: 1 },
        { aid: 'A0000006581010', label: 'MIR', priority: 2 },
      ],
    },
  },
  { label: 'Visa card', spec: { kind: 'emv', scheme: 'visa', pan: '4111111111111111', expiry: '2028-12', psn: '00' } },
  { label: 'real card trace (CB + Visa)', spec: { kind: 'trace', trace: REAL_TRACE_VISA_CB } },
];

export function register(program: Command): void {
  program
    .command('demo')
    .description('read the demo cards (Mir, Visa, co-badged, a real trace) through the EMV code, one line each; the full demo is rc-demo (npm start)')
    .option('--cards', 'read the demo cards (what this command does; kept for scripts that pass it)')
    .option('--json', 'one JSON object per card')
    .action(async (opts: { cards?: boolean; json?: boolean }) => readCards(opts.json === true));
}

async function readCards(json: boolean): Promise<void> {
  const log = rootLogger().child({ component: 'demo' });
  const tokenKey = resolveTokenKey(undefined, undefined, log);
  const width = Math.max(...DEMO_CARDS.map((c) => c.label.length));
  for (const { label, spec } of DEMO_CARDS) {
    const t0 = performance.now();
    try {
      const r = await readMirCard(openInProcessCard(spec), { now: new Date(), tokenKey });
      if (json) process.stdout.write(`${JSON.stringify({ card: label, ...r })}\n`);
      else
        process.stdout.write(
          `${label.padEnd(width)}  ${r.scheme}  ${r.maskedPan.padEnd(19)}  exp ${r.expiry}  psn ${r.psn ?? '--'}  token ${r.token.slice(0, 8)}… (key v${r.keyVersion})  ${r.apdus} APDUs  ${r.ms.toFixed(2)} ms\n`,
        );
    } catch (e) {
      if (!isRcError(e)) throw e;
      const ms = Math.round((performance.now() - t0) * 1000) / 1000;
      if (json) process.stdout.write(`${JSON.stringify({ card: label, error: e.code, ...e.context, ms })}\n`);
      else {
        const ctx = e.context && 'scheme' in e.context ? ` (${String(e.context.scheme)} ${String(e.context.aid)})` : '';
        process.stdout.write(`${label.padEnd(width)}  refused: ${e.code}${ctx}  ${ms.toFixed(2)} ms\n`);
      }
    }
  }
}
