/**
 * One instance's leadership in a process of its own (test/integration/leader-pg.test.ts kills it with -9): holds
 * pgLeadership on the URL in argv[2] and prints `gained` / `lost` on stdout as they happen.
 */
import { createLogger } from '../../protocol/log.js';
import { pgLeadership } from '../../sync-server/start/leader.js';

const url = process.argv[2];
if (!url) throw new Error('usage: leader-child.ts POSTGRES_URL');
const l = await pgLeadership(url, { log: createLogger({ level: 'silent' }) });
const say = (s: string) => process.stdout.write(`${s}\n`);
l.on('gained', () => say('gained'));
l.on('lost', () => say('lost'));
say(l.isLeader() ? 'gained' : 'follower');
setInterval(() => undefined, 1 << 30); // stay until killed
