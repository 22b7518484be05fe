import type { Command } from 'commander';
import { ChargingRunAnswer, OkAnswer, RepayAnswer } from '../../protocol/api.js';
import { DEFAULT_SERVER, callApi, fail } from './client.js';

export function register(program: Command): void {
  const ch = program.command('charging').description('deferred charging of full fares');
  const common = (c: Command) => c.option('--server <url>', 'sync-server HTTP API', DEFAULT_SERVER).option('--json', 'machine-readable output');
  common(ch.command('run').description('settle pending charges now')).action(async (o: { server: string; json?: boolean }) => {
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
