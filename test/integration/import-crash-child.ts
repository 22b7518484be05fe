// Child of test/integration/import-crash.test.ts (not a test itself).
//   node --import tsx test/integration/import-crash-child.ts DATA_DIR CARDS ROUND [DATABASE]
// Starts a sync-server on DATA_DIR (which finishes an interrupted import first), prints "U" when up,
// then imports forever: all CARDS cards with an expiry that changes every time, then a stop-list of
// a few hundred of them; prints "I <n>" after each import returned. The parent SIGKILLs it at random.
import { startServer } from '../../sync-server/server.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { createLogger } from '../../protocol/log.js';
import { cardsCsv, tokenOf } from '../support/registry-csv.js';
import { linesOf } from '../support/sync-harness.js';

const [dataDir, cardsArg, roundArg, database] = process.argv.slice(2); // DATABASE: a postgres:// URL, else the registry in DATA_DIR
const cards = Number(cardsArg);
const round = Number(roundArg);
const out = (s: string) => process.stdout.write(s + '\n');

const server = await startServer({
  dataDir: dataDir!,
  mqttPort: 0,
  httpPort: 0,
  tokenKey: DEV_TOKEN_KEY,
  log: createLogger({ level: 'silent' }),
  ...(database ? { database } : {}),
});
out('U');
for (let n = 0; ; n++) {
  const k = round * 7 + n;
  const expiry = `20${30 + (k % 9)}-${String((k % 12) + 1).padStart(2, '0')}`;
  await server.api.importCsv('cards', linesOf(cardsCsv(0, cards, expiry)), false);
  out(`I ${2 * n}`);
  const from = (k * 97) % (cards - 500);
  const stop = ['token,reason', ...Array.from({ length: 300 }, (_, i) => `${tokenOf(from + i)},${k % 2 ? 'lost' : 'stolen'}`)].join('\n');
  await server.api.importCsv('stoplist', linesOf(stop), false);
  out(`I ${2 * n + 1}`);
}
