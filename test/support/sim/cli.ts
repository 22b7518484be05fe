import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { SerialEndpoint, type SimEndpoint } from './endpoint.js';
import type { Behaviour, Rcp1Peer } from './rcp1-peer.js';

/**
 * Process mode shared by the simulators, for end-to-end tests that need the
 * controller as a separate process:
 *   node --import tsx test/support/sim/turnstile-sim.ts --port /path [--baud 19200]
 *        [--behaviour normal|never-passes|silent|garbage|noisy|nak-first|ack-lost] [--nak-first N]
 *        [--pass-delay-ms 50] [--exit-on-stdin-close]
 * stdout: one JSON object per line: {"type":"ready"}, {"type":"port","open":bool},
 *   {"type":"command",...} for every command frame, {"type":"event",...} for every event sent.
 * stdin: JSON lines to steer it: {"behaviour":"silent"}, {"behaviour":"nak-first","n":2}, {"tamper":1}.
 * SIGTERM/SIGINT: closes the port and exits 0.
 */

const BehaviourName = z.enum(['normal', 'never-passes', 'silent', 'garbage', 'noisy', 'nak-first', 'ack-lost']);
const Control = z.union([
  z.object({ behaviour: BehaviourName, n: z.number().int().min(0).max(1000).optional() }).strict(),
  z.object({ tamper: z.number().int().min(0).max(255) }).strict(),
]);

export interface SimArgs {
  port: string;
  baudRate: number;
  behaviour: Behaviour;
  passDelayMs: number;
}

export interface SimHandle {
  peer: Rcp1Peer;
  tamper(detail: number): void;
  close(): void;
}

export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && pathToFileURL(entry).href === metaUrl;
}

function toBehaviour(name: z.infer<typeof BehaviourName>, n: number | undefined): Behaviour {
  if (name === 'nak-first' || name === 'ack-lost') return { mode: name, n: n ?? 1 };
  return { mode: name };
}

function emit(o: unknown): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

export async function runSimCli(kind: string, make: (endpoint: SimEndpoint, args: SimArgs) => SimHandle): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      baud: { type: 'string', default: '19200' },
      behaviour: { type: 'string', default: 'normal' },
      'nak-first': { type: 'string' },
      'pass-delay-ms': { type: 'string', default: '50' },
      'exit-on-stdin-close': { type: 'boolean', default: false },
    },
  });
  const parsed = z
    .object({
      port: z.string().min(1),
      baud: z.coerce.number().int().positive(),
      behaviour: BehaviourName,
      'nak-first': z.coerce.number().int().min(0).optional(),
      'pass-delay-ms': z.coerce.number().int().min(0),
      'exit-on-stdin-close': z.boolean(),
    })
    .safeParse(values);
  if (!parsed.success) {
    process.stderr.write(`${kind}-sim: bad arguments: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}\n`);
    process.exit(2);
  }
  const a = parsed.data;
  const behaviour = a['nak-first'] !== undefined ? toBehaviour('nak-first', a['nak-first']) : toBehaviour(a.behaviour, undefined);
  let ready = false;
  const endpoint = new SerialEndpoint(a.port, a.baud, 50, (open) => {
    emit({ type: 'port', open });
    if (open && !ready) {
      ready = true;
      emit({ type: 'ready', kind, port: a.port });
    }
    if (open) {
      handle.peer.reboot();
      void handle.peer.sendEvent({ type: 'boot' });
    }
  });
  const handle = make(endpoint, { port: a.port, baudRate: a.baud, behaviour, passDelayMs: a['pass-delay-ms'] });
  handle.peer.onTrace = (t) => emit(t);

  const shutdown = async (): Promise<void> => {
    handle.close();
    await endpoint.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());

  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      emit({ type: 'error', message: 'control line is not JSON' });
      return;
    }
    const c = Control.safeParse(json);
    if (!c.success) {
      emit({ type: 'error', message: 'unknown control line' });
      return;
    }
    if ('behaviour' in c.data) {
      handle.peer.setBehaviour(toBehaviour(c.data.behaviour, c.data.n));
      emit({ type: 'behaviour', behaviour: handle.peer.behaviour });
    } else {
      handle.tamper(c.data.tamper);
    }
  });
  rl.on('close', () => {
    if (a['exit-on-stdin-close']) void shutdown();
  });
}
