import type { Command } from 'commander';
import { ErrorCode, RcError } from '../../protocol/errors.js';
import { auditCsv, queryAudit } from '../audit.js';
import { cliAddUser, cliCreateToken, cliDisableUser, cliRevokeToken, cliSetPassword, cliTokens, cliUsers } from '../auth/cli.js';
import type { Db } from '../registry.js';
import { DEFAULT_DATA_DIR, fail } from './client.js';
import { parseTtl } from './enrol-token.js';
import { databaseOption, openCommandRegistry, type RegistryOpts } from './database.js';

/** rc-sync-server user …, token …, audit: accounts, API tokens and the audit log, on the registry of --data or --database (sync-server/auth/cli.ts). */
async function withDb<T>(o: RegistryOpts, f: (db: Db) => Promise<T> | T): Promise<T> {
  const db = openCommandRegistry(o);
  try {
    return await f(db);
  } finally {
    db.close();
  }
}

async function readStdinPassword(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  const p = Buffer.concat(parts)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (p.length < 12) throw new RcError(ErrorCode.InputInvalid, 'the password read from standard input has fewer than 12 characters');
  return p;
}

const dataOpt = (c: Command) =>
  databaseOption(c.option('--data <dir>', 'data directory (registry)', DEFAULT_DATA_DIR)).option('--json', 'machine-readable output');
type Common = RegistryOpts & { json?: boolean };
const out = (o: Common, json: unknown, text: string) => process.stdout.write(o.json ? JSON.stringify(json) + '\n' : text);

export function register(program: Command): void {
  const user = program.command('user').description('operator accounts (console sign-in): add, passwd, disable, list');
  dataOpt(user.command('add <name>').description('add an account; prints its generated password once (or reads one with --password-stdin)'))
    .requiredOption('--role <role>', 'admin | operator | school | carrier | auditor')
    .option('--school <id>', 'school role: the school')
    .option('--carrier <id>', 'carrier role: the carrier')
    .option('--password-stdin', 'read the password from standard input instead of generating one')
    .action(async (name: string, o: Common & { role: string; school?: string; carrier?: string; passwordStdin?: boolean }) => {
      try {
        const password = o.passwordStdin ? await readStdinPassword() : undefined;
        const r = await withDb(o, (db) =>
          cliAddUser(db, {
            name,
            role: o.role,
            ...(o.school ? { school: o.school } : {}),
            ...(o.carrier ? { carrier: o.carrier } : {}),
            ...(password ? { password } : {}),
          }),
        );
        out(o, r, r.password ? `${r.password}\n` : `user ${r.user.name} added\n`);
        if (r.password && !o.json) process.stderr.write(`user ${r.user.name} (${r.user.role}) added; the line above is its password, shown once\n`);
      } catch (e) {
        fail(e, o.json === true);
      }
    });
  dataOpt(user.command('passwd <name>').description("a new password (generated and printed once, or read with --password-stdin); the user's sessions end"))
    .option('--password-stdin', 'read the password from standard input')
    .action(async (name: string, o: Common & { passwordStdin?: boolean }) => {
      try {
        const password = o.passwordStdin ? await readStdinPassword() : undefined;
        const r = await withDb(o, (db) => cliSetPassword(db, name, password));
        out(o, r, r.password ? `${r.password}\n` : `password of ${name} changed\n`);
      } catch (e) {
        fail(e, o.json === true);
      }
    });
  dataOpt(user.command('disable <name>').description('the account cannot sign in any more; its sessions end at once')).action(
    async (name: string, o: Common) => {
      try {
        const u = await withDb(o, (db) => cliDisableUser(db, name));
        out(o, { user: u }, `user ${u.name} disabled at ${u.disabledAt}\n`);
      } catch (e) {
        fail(e, o.json === true);
      }
    },
  );
  dataOpt(user.command('list').description('every account')).action(async (o: Common) => {
    try {
      const users = await withDb(o, (db) => cliUsers(db));
      out(
        o,
        { users },
        users
          .map(
            (u) =>
              `${u.name.padEnd(20)} ${u.role.padEnd(9)} ${(u.school ?? u.carrier ?? '-').padEnd(10)} ${u.disabledAt ? `DISABLED ${u.disabledAt}` : 'active'}\n`,
          )
          .join(''),
      );
    } catch (e) {
      fail(e, o.json === true);
    }
  });

  const token = program.command('token').description('API tokens for scripts and Prometheus: create, list, revoke');
  dataOpt(token.command('create').description('create an API token; prints it alone on its line, once'))
    .requiredOption('--role <role>', 'admin | operator | school | carrier | auditor')
    .option('--name <name>', 'a name for lists and the audit log')
    .option('--school <id>', 'school role: the school')
    .option('--carrier <id>', 'carrier role: the carrier')
    .option('--ttl <duration>', 'valid for (e.g. 90d); default: until revoked')
    .action(async (o: Common & { role: string; name?: string; school?: string; carrier?: string; ttl?: string }) => {
      try {
        const t = await withDb(o, (db) =>
          cliCreateToken(db, {
            role: o.role,
            ...(o.name ? { name: o.name } : {}),
            ...(o.school ? { school: o.school } : {}),
            ...(o.carrier ? { carrier: o.carrier } : {}),
            ...(o.ttl ? { ttlSec: parseTtl(o.ttl) } : {}),
          }),
        );
        out(o, t, `${t.token}\n`);
        if (!o.json) process.stderr.write(`API token ${t.info.id} (${t.info.name}, ${t.info.role}) valid until ${t.info.expiresAt ?? 'revoked'}; shown once\n`);
      } catch (e) {
        fail(e, o.json === true);
      }
    });
  dataOpt(token.command('list').description('every API token (never the token itself)')).action(async (o: Common) => {
    try {
      const tokens = await withDb(o, (db) => cliTokens(db));
      out(
        o,
        { tokens },
        tokens
          .map(
            (t) =>
              `${t.id} ${t.name.padEnd(20)} ${t.role.padEnd(9)} ${t.revokedAt ? `REVOKED ${t.revokedAt}` : t.expiresAt ? `until ${t.expiresAt}` : 'no expiry'}\n`,
          )
          .join(''),
      );
    } catch (e) {
      fail(e, o.json === true);
    }
  });
  dataOpt(token.command('revoke <id>').description('revoke an API token at once')).action(async (id: string, o: Common) => {
    try {
      const t = await withDb(o, (db) => cliRevokeToken(db, id));
      out(o, { token: t }, `API token ${t.id} revoked at ${t.revokedAt}\n`);
    } catch (e) {
      fail(e, o.json === true);
    }
  });

  dataOpt(program.command('audit').description('the audit log, newest first: who changed what, from where, with what result'))
    .option('--csv', 'CSV output (for a spreadsheet)')
    .option('--since <iso>', 'from this time')
    .option('--until <iso>', 'before this time')
    .option('--who <name>', 'only this user or token name')
    .option('--action <text>', 'only actions containing this (e.g. import, user.add)')
    .option('--limit <n>', 'at most this many rows', '1000')
    .action(async (o: Common & { csv?: boolean; since?: string; until?: string; who?: string; action?: string; limit: string }) => {
      try {
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new RcError(ErrorCode.InputInvalid, `--limit wants a whole number, not ${o.limit}`);
        const rows = await withDb(o, (db) =>
          queryAudit(db, {
            limit,
            ...(o.since ? { since: o.since } : {}),
            ...(o.until ? { until: o.until } : {}),
            ...(o.who ? { who: o.who } : {}),
            ...(o.action ? { action: o.action } : {}),
          }),
        );
        if (o.csv) return void process.stdout.write(auditCsv(rows));
        out(
          o,
          { rows },
          rows.map((r) => `${r.time} ${r.who} (${r.role ?? '-'}) from ${r.source}: ${r.action} ${JSON.stringify(r.detail)} → ${r.result}\n`).join(''),
        );
      } catch (e) {
        fail(e, o.json === true);
      }
    });
}
