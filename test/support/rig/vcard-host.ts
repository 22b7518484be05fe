/**
 * Child process that hosts virtual cards for the PC/SC rig.
 *
 * Why a child: the smartcard binding makes some PC/SC calls synchronously
 * (new Context(), listReaders(), card.disconnect()); a virtual card served on
 * the same event loop cannot answer pcscd while the loop is blocked, so the
 * test process would deadlock. Cards live here instead.
 *
 * Control: JSON lines on stdin, one JSON line answer on stdout per request.
 *   {"id":1,"op":"insert","port":N,"spec":{...VCardSpec | {"kind":"rig-echo"}}}
 *   {"id":2,"op":"remove","port":N}
 * Unsolicited: {"event":"closed","port":N} when a card's connection ended.
 */
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { createVirtualCard } from '../../../device/vcard/spec.js';
import { connectVpcd, type VpcdCardConnection } from '../../../device/vcard/vpcd.js';
import { echoCard } from './echo-card.js';

const Req = z.discriminatedUnion('op', [
  z.object({ id: z.number(), op: z.literal('insert'), port: z.number().int().min(1).max(65535), host: z.string().optional(), spec: z.unknown() }),
  z.object({ id: z.number(), op: z.literal('remove'), port: z.number().int().min(1).max(65535) }),
]);

const cards = new Map<number, VpcdCardConnection>();
const send = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

async function handle(line: string): Promise<void> {
  let req: z.infer<typeof Req>;
  try {
    req = Req.parse(JSON.parse(line));
  } catch (e) {
    send({ id: -1, ok: false, error: (e as Error).message });
    return;
  }
  try {
    if (req.op === 'insert') {
      const old = cards.get(req.port);
      if (old) await old.remove();
      const spec = req.spec as { kind?: unknown };
      const card = spec && spec.kind === 'rig-echo' ? echoCard() : createVirtualCard(req.spec as Parameters<typeof createVirtualCard>[0]);
      const conn = await connectVpcd(card, { port: req.port, ...(req.host ? { host: req.host } : {}) });
      cards.set(req.port, conn);
      const port = req.port;
      void conn.closed.then(() => {
        if (cards.get(port) === conn) cards.delete(port);
        send({ event: 'closed', port });
      });
      send({ id: req.id, ok: true });
    } else {
      const c = cards.get(req.port);
      if (c) await c.remove();
      send({ id: req.id, ok: true });
    }
  } catch (e) {
    const err = e as { code?: string; message?: string };
    send({ id: req.id, ok: false, error: err.code ?? err.message ?? 'error' });
  }
}

{
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (l) => void handle(l));
  rl.on('close', () => {
    for (const c of cards.values()) void c.remove();
    process.exit(0);
  });
  send({ event: 'ready' });
}
