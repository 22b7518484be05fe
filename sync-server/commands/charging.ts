import type { Command } from 'commander';
import { ChargesAnswer, ChargingRunAnswer, OkAnswer, RepayAnswer } from '../../protocol/api.js';
import { DEFAULT_SERVER, callApi, fail } from './client.js';

export function register(program: Command): void {
  const ch = program.command('charging').description('aggregated charging: one charge per card per closed service day');
  const common = (c: Command) => c.option('--server <url>', 'sync-server HTTP API', DEFAULT_SERVER).option('--json', 'machine-readable output');
  common(ch.command('list').description('aggregated charges: token, serviceDay, amountKopecks, taps, status'))
    .option('--status <status>', 'only charges in this status (pending, charged, declined, repaid)')
    .option('--limit <n>', 'at most this many charges', '1000')
    .action(async (o: { server: string; json?: boolean; status?: string; limit: string }) => {
      try {
        const q = new URLSearchParams({ limit: o.limit });
        if (o.status) q.set('status', o.status);
        const r = await callApi(o.server, 'GET', `/v1/charging?${q}`, ChargesAnswer);
        if (o.json) {
          for (const c of r.charges) {
            const row = { token: c.token, serviceDay: c.serviceDay, amountKopecks: c.amountKopecks, taps: c.taps, status: c.status };
            process.stdout.write(JSON.stringify(row) + '\n');
          }
          return;
        }
        for (const c of r.charges) process.stdout.write(`${c.serviceDay} ${c.token} ${(c.amountKopecks / 100).toFixed(2)} ${c.taps} ${c.status}\n`);
      } catch (e) {
        fail(e, o.json === true);
      }
    });
  common(ch.command('run').description('settle the journal, close ended days, charge')).action(async (o: { server: string; json?: boolean }) => {
    try {
      const r = await callApi(o.server, 'POST', '/v1/charging/run', ChargingRunAnswer);
      process.stdout.write(JSON.stringify(r) + '\n');
    } catch (e) {
      fail(e, o.json === true);
    }
  });
  common(ch.command('repay').description('record a repayment: the card leaves the stop-list').argument('<token>', 'card token (32 hex)')).action(
    async (token: string, o: { server: string; json?: boolean }) => {
      try {
        const r = await callApi(o.server, 'POST', '/v1/charging/repay', RepayAnswer, { token });
        process.stdout.write(JSON.stringify(r) + '\n');
      } catch (e) {
        fail(e, o.json === true);
      }
    },
  );
  common(ch.command('decline').description('simulator: decline charges of these tokens').argument('<tokens...>', 'card tokens')).action(
    async (tokens: string[], o: { server: string; json?: boolean }) => {
      try {
        const r = await callApi(o.server, 'POST', '/v1/charging/decline', OkAnswer, { tokens });
        process.stdout.write(JSON.stringify(r) + '\n');
      } catch (e) {
        fail(e, o.json === true);
      }
    },
  );
}
