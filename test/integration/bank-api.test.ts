/**
 * The bank API (issue 15 item 3) over real mutual TLS: a bank with its client certificate connects cards on behalf
 * of applicants; replays, idempotency conflicts, the one-active-card rule, refused certificates, the rate limit, and
 * signed status callbacks retried after a failure. No PAN in the registry file, the log, the outbox or any answer.
 */
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connection, StatusEvent } from '../../protocol/bank-api.js';
import { DEV_TOKEN_KEY } from '../../protocol/token.js';
import { addBank, addBankCert, revokeBankCert, setBankDisabled, type AddedBank } from '../../sync-server/bank/banks.js';
import { issueClientCert, loadBankCa } from '../../sync-server/bank/ca.js';
import { importIdentities, snilsKey } from '../../sync-server/cabinet/service.js';
import { tokeniseHolderCard } from '../../sync-server/console/cards.js';
import { loadTls, tlsInit, type TlsInitResult } from '../../sync-server/tls.js';
import { verifyWebhook } from '../support/notify.js';
import { operatorFetch } from '../support/operator-api.js';
import { MIR_PAN, MIR_PAN_2, PAN, syntheticPan } from '../support/pans.js';
import { startStack, type Stack } from '../support/sync-harness.js';
import { registryContents } from '../support/test-db.js';
import { waitFor } from '../support/wait.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  raw: string;
}
interface ClientCert {
  cert: string;
  key: string;
}

/** A callback receiver whose secret is known once the bank is added; answers `failNext` requests with 503 first. */
interface Receiver {
  url: string;
  secret: string;
  failNext: number;
  requests: { raw: string; key: string; signatureOk: boolean; timestampOk: boolean; status: number }[];
  close(): Promise<void>;
}
async function startReceiver(): Promise<Receiver> {
  const r: Receiver = { url: '', secret: '', failNext: 0, requests: [], close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(parts).toString('utf8');
      const v = verifyWebhook(r.secret, req.headers, raw);
      const status = r.failNext > 0 ? 503 : v.signatureOk && v.timestampOk ? 204 : 401;
      if (r.failNext > 0) r.failNext--;
      r.requests.push({ raw, key: String(req.headers['idempotency-key'] ?? ''), ...v, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bank-callback`;
  r.close = () =>
    new Promise<void>((res) => {
      server.closeAllConnections();
      server.close(() => res());
    });
  return r;
}

describe('bank API over mutual TLS', () => {
  let base: string;
  let pki: TlsInitResult;
  let impostor: TlsInitResult;
  let stack: Stack;
  let bankUrl: URL;
  let receiver: Receiver;
  let bankA: AddedBank;
  let bankB: AddedBank;
  const answers: string[] = [];

  /** One HTTPS request with (or without) a client certificate; the server's CA is the one `tls init` made. */
  function call(client: ClientCert | null, method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: bankUrl.hostname,
          port: Number(bankUrl.port),
          method,
          path,
          ca: readFileSync(pki.caCert, 'utf8'),
          ...(client ? { cert: client.cert, key: client.key } : {}),
          agent: false,
          headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...headers },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => {
            const raw = Buffer.concat(parts).toString('utf8');
            answers.push(raw);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, raw, body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {} });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }
  const client = (b: AddedBank): ClientCert => ({ cert: b.certPem, key: b.keyPem! });
  const connect = (b: ClientCert, key: string, body: unknown) => call(b, 'POST', '/v1/bank/connections', body, { 'idempotency-key': key });
  const errorCode = (a: Answer) => (a.body.error as { code: string } | undefined)?.code;
  /** The token of a card typed with its printed expiry (the token covers PAN ‖ expiry: docs/token-key.md). */
  const tokenOf = (pan: string, expiry = '12/30') => tokeniseHolderCard(pan, expiry, DEV_TOKEN_KEY).token;
  const registryChanges = () => ({
    cards: stack.server.db.prepare('SELECT count(*) FROM cards').pluck().get() as number,
    connections: stack.server.db.prepare('SELECT count(*) FROM bank_connections').pluck().get() as number,
    audits: stack.server.db.prepare("SELECT count(*) FROM audit WHERE action = 'card.connect'").pluck().get() as number,
  });

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rc-bank-'));
    pki = tlsInit(join(base, 'pki'), ['127.0.0.1', 'localhost']);
    impostor = tlsInit(join(base, 'impostor'), ['127.0.0.1']);
    receiver = await startReceiver();
    stack = await startStack('embedded', {
      bankListen: { host: '127.0.0.1', port: 0 },
      bankTls: loadTls({ cert: pki.cert, key: pki.key, ca: pki.caCert }),
      bank: { rate: { perSecond: 2, burst: 12 }, outbox: { intervalMs: 100, baseMs: 300, maxMs: 2000 }, refreshMs: 200 },
    });
    bankUrl = new URL(stack.server.bankUrl!);
    // what `rc-sync-server bank add` does, on the running server's registry
    bankA = addBank(stack.server.db, stack.dataDir, { id: 'bank-a', name: 'Bank A', site: 'https://bank-a.example', callbackUrl: receiver.url });
    receiver.secret = bankA.callbackSecret!;
    bankB = addBank(stack.server.db, stack.dataDir, { id: 'bank-b', name: 'Bank B' });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    await receiver?.close();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('a bank with its certificate connects a card: registry row with the token only, answer with the masked PAN; active once published', async () => {
    receiver.failNext = 1; // the first callback fails: it must be retried
    const a = await connect(client(bankA), 'conn-0001-pensioner', { applicant: { personId: 'p-pensioner' }, pan: PAN.pensioner, expiry: '12/30' });
    expect(a.status).toBe(200);
    const c = Connection.parse(a.body);
    expect(c).toMatchObject({ status: 'accepted', result: 'connected', masked: '220070******0017', expiry: '2030-12' });
    const row = stack.server.db.prepare('SELECT token, expiry FROM cards WHERE person_id = ?').get('p-pensioner') as { token: string; expiry: string };
    expect(row).toEqual({ token: tokenOf(PAN.pensioner), expiry: '2030-12' });
    // active: in the transit list's published entries, with the version it was seen in
    const active = await waitFor(
      async () => {
        const g = await call(client(bankA), 'GET', `/v1/bank/connections/${c.id}`);
        return g.body.status === 'active' ? Connection.parse(g.body) : null;
      },
      { timeoutMs: 10_000, everyMs: 700, what: 'connection active' },
    );
    expect(active.listVersion).toBeGreaterThanOrEqual(1);
    expect(active.listVersion).toBeLessThanOrEqual(stack.server.publisher.version('transit'));
    const entry = stack.server.db.prepare("SELECT 1 FROM entries WHERE scope = 'transit' AND token = ?").pluck().get(row.token);
    expect(entry).toBe(1);
  });

  it('status callbacks arrive signed, accepted then active, and the one that failed is retried with the same event id', async () => {
    const events = await waitFor(
      () => {
        const ok = receiver.requests.filter((r) => r.status === 204).map((r) => StatusEvent.parse(JSON.parse(r.raw)));
        return ok.some((e) => e.connection.status === 'active') && ok.some((e) => e.connection.status === 'accepted') ? ok : null;
      },
      { timeoutMs: 15_000, what: () => `callbacks accepted and active (got ${JSON.stringify(receiver.requests.map((r) => r.status))})` },
    );
    expect(receiver.requests.every((r) => r.signatureOk && r.timestampOk)).toBe(true);
    const failed = receiver.requests.find((r) => r.status === 503)!;
    expect(failed).toBeDefined();
    // the retry carries the same event id (Idempotency-Key), so the bank can drop a duplicate
    expect(receiver.requests.filter((r) => r.key === failed.key).map((r) => r.status)).toEqual([503, 204]);
    for (const e of events) expect(e.key).toBe(e.eventId);
    // the outbox row is marked sent once the receiver's answer is back (just after the receiver counted it)
    const row = () =>
      stack.server.db.prepare('SELECT state, attempts FROM bank_outbox WHERE event_id = ?').get(failed.key) as { state: string; attempts: number };
    await waitFor(() => row().state === 'sent', { timeoutMs: 5000, what: () => `outbox row sent (${JSON.stringify(row())})` });
    expect(row()).toEqual({ state: 'sent', attempts: 2 });
  });

  it('the replayed request (same Idempotency-Key, same body) answers the same and changes nothing', async () => {
    const before = registryChanges();
    const body = { applicant: { personId: 'p-student' }, pan: PAN.student, expiry: '0931' };
    const first = await connect(client(bankA), 'conn-0002-student', body);
    expect(first.status).toBe(200);
    const mid = registryChanges();
    expect(mid).toEqual({ cards: before.cards + 1, connections: before.connections + 1, audits: before.audits + 1 });
    const replay = await connect(client(bankA), 'conn-0002-student', body);
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual(first.body);
    expect(registryChanges()).toEqual(mid);
  });

  it('the same Idempotency-Key with another body is 422 bank.idempotency-conflict; no key is 400 bank.idempotency-key', async () => {
    const other = await connect(client(bankA), 'conn-0002-student', { applicant: { personId: 'p-student' }, pan: PAN.student, expiry: '09/32' });
    expect(other.status).toBe(422);
    expect(errorCode(other)).toBe('bank.idempotency-conflict');
    const none = await call(client(bankA), 'POST', '/v1/bank/connections', { applicant: { personId: 'p-x' }, pan: MIR_PAN, expiry: '12/30' });
    expect(none.status).toBe(400);
    expect(errorCode(none)).toBe('bank.idempotency-key');
    const badPan = await connect(client(bankA), 'conn-0003-badpan', { applicant: { personId: 'p-x' }, pan: '2200123456789018', expiry: '12/30' });
    expect(errorCode(badPan)).toBe('card.bad-pan');
  });

  it('a card connected to another person is 409 bank.card-conflict (and its replay the same 409)', async () => {
    const before = registryChanges();
    const body = { applicant: { personId: 'p-thief' }, pan: PAN.pensioner, expiry: '12/30', replace: true };
    const a = await connect(client(bankB), 'conn-b-0001-conflict', body);
    expect(a.status).toBe(409);
    expect(errorCode(a)).toBe('bank.card-conflict');
    const again = await connect(client(bankB), 'conn-b-0001-conflict', body);
    expect(again.status).toBe(409);
    expect(again.body).toEqual(a.body);
    expect(registryChanges()).toEqual(before);
    expect(stack.server.db.prepare('SELECT person_id FROM cards WHERE token = ?').pluck().get(tokenOf(PAN.pensioner))).toBe('p-pensioner');
  });

  it("an applicant named by SNILS is found through the registry's SNILS link (identities import); an unknown SNILS is 422 bank.unknown-applicant; the SNILS is kept hashed only", async () => {
    importIdentities(stack.server.db, snilsKey(stack.dataDir), [{ personId: 'p-by-snils', snils: '112-233-445 95' }]);
    const pan = syntheticPan(77);
    const ok = await connect(client(bankA), 'conn-snils-0001', { applicant: { snils: '11223344595' }, pan, expiry: '05/31' });
    expect(ok.status).toBe(200);
    expect(Connection.parse(ok.body)).toMatchObject({ status: 'accepted', result: 'connected' });
    expect(stack.server.db.prepare('SELECT person_id FROM cards WHERE token = ?').pluck().get(tokenOf(pan, '05/31'))).toBe('p-by-snils');
    const unknown = await connect(client(bankA), 'conn-snils-0002', { applicant: { snils: '999-999-999 99' }, pan: syntheticPan(78), expiry: '05/31' });
    expect(unknown.status).toBe(422);
    expect(errorCode(unknown)).toBe('bank.unknown-applicant');
    const kept = stack.server.db.prepare("SELECT body_hash || answer FROM bank_requests WHERE key LIKE 'conn-snils-%'").pluck().all() as string[];
    for (const k of kept) expect(k).not.toMatch(/11223344595|112-233-445/);
  });

  it('a person with another card and no replace is 409 bank.person-has-card with the current masked PAN; with replace the old card is replaced', async () => {
    const no = await connect(client(bankA), 'conn-0004-second', { applicant: { personId: 'p-pensioner' }, pan: MIR_PAN_2, expiry: '01/31' });
    expect(no.status).toBe(409);
    expect(no.body.error).toMatchObject({ code: 'bank.person-has-card', context: { currentMasked: '220070******0017' } });
    const first = stack.server.db.prepare("SELECT id FROM bank_connections WHERE person_id = 'p-pensioner'").pluck().get() as string;
    const yes = await connect(client(bankA), 'conn-0005-replace', { applicant: { personId: 'p-pensioner' }, pan: MIR_PAN_2, expiry: '01/31', replace: true });
    expect(yes.status).toBe(200);
    expect(Connection.parse(yes.body)).toMatchObject({ result: 'replaced', previousMasked: '220070******0017', masked: '220012******9027' });
    expect(stack.server.db.prepare("SELECT token FROM cards WHERE person_id = 'p-pensioner'").pluck().get()).toBe(tokenOf(MIR_PAN_2, '01/31'));
    // the old card's connection is replaced, and its token leaves the transit list
    await waitFor(() => stack.server.db.prepare('SELECT status FROM bank_connections WHERE id = ?').pluck().get(first) === 'replaced', {
      timeoutMs: 10_000,
      what: 'first connection replaced',
    });
    await waitFor(() => stack.server.db.prepare("SELECT 1 FROM entries WHERE scope = 'transit' AND token = ?").get(tokenOf(PAN.pensioner)) === undefined, {
      timeoutMs: 10_000,
      what: 'old token out of the transit list',
    });
  });

  it('a card the operator stop-lists (console, by its number) makes the connection stopped, and the bank is told', async () => {
    const id = stack.server.db.prepare("SELECT id FROM bank_connections WHERE person_id = 'p-student'").pluck().get() as string;
    const r = await operatorFetch({ httpUrl: stack.server.httpUrl, dataDir: stack.dataDir }, '/v1/stoplist', {
      method: 'POST',
      body: JSON.stringify({ pan: PAN.student, expiry: '09/31', reason: 'lost' }),
    });
    expect(r.status).toBe(200);
    await waitFor(() => stack.server.db.prepare('SELECT status FROM bank_connections WHERE id = ?').pluck().get(id) === 'stopped', {
      timeoutMs: 10_000,
      what: 'connection stopped',
    });
    await waitFor(
      () =>
        receiver.requests
          .filter((q) => q.status === 204)
          .map((q) => StatusEvent.parse(JSON.parse(q.raw)))
          .find((e) => e.connection.id === id && e.connection.status === 'stopped'),
      { timeoutMs: 10_000, what: 'stopped callback' },
    );
    const g = await call(client(bankA), 'GET', `/v1/bank/connections/${id}`);
    expect(g.body).toMatchObject({ id, status: 'stopped' });
  });

  it('refused: no certificate, a foreign CA, a bank-CA certificate not registered, a revoked certificate, a disabled bank', async () => {
    await expect(call(null, 'GET', '/v1/bank/connections/aaaaaaaaaaaa')).rejects.toThrow();
    await expect(
      call({ cert: readFileSync(impostor.cert, 'utf8'), key: readFileSync(impostor.key, 'utf8') }, 'GET', '/v1/bank/connections/aaaaaaaaaaaa'),
    ).rejects.toThrow();
    // signed by the bank CA, but never registered: the CA alone does not make a bank
    const stray = issueClientCert(loadBankCa(stack.dataDir)!, 'stray');
    const s = await call({ cert: stray.certPem, key: stray.keyPem! }, 'GET', '/v1/bank/connections/aaaaaaaaaaaa');
    expect(s.status).toBe(401);
    expect(errorCode(s)).toBe('bank.unknown-certificate');
    // a second certificate of bank B, revoked
    const second = addBankCert(stack.server.db, stack.dataDir, 'bank-b', {});
    const ok = await call({ cert: second.certPem, key: second.keyPem! }, 'GET', '/v1/bank/connections/aaaaaaaaaaaa');
    expect(errorCode(ok)).toBe('bank.connection-not-found');
    revokeBankCert(stack.server.db, 'bank-b', second.fingerprint);
    const revoked = await call({ cert: second.certPem, key: second.keyPem! }, 'GET', '/v1/bank/connections/aaaaaaaaaaaa');
    expect(revoked.status).toBe(401);
    expect(errorCode(revoked)).toBe('bank.unknown-certificate');
    setBankDisabled(stack.server.db, 'bank-b', true);
    const disabled = await call(client(bankB), 'GET', '/v1/bank/connections/aaaaaaaaaaaa');
    expect(disabled.status).toBe(401);
    expect(errorCode(disabled)).toBe('bank.disabled');
    // a disabled bank is not in the public list either
    const pub = await fetch(`${stack.server.httpUrl}/v1/public/banks`); // no sign-in: a public route;
    expect(((await pub.json()) as { banks: { id: string }[] }).banks.map((b) => b.id)).toEqual(['bank-a']);
    setBankDisabled(stack.server.db, 'bank-b', false);
  });

  it('another bank cannot read a connection it did not make', async () => {
    const mine = stack.server.db.prepare("SELECT id FROM bank_connections WHERE bank_id = 'bank-a' LIMIT 1").pluck().get() as string;
    const theirs = await call(client(bankB), 'GET', `/v1/bank/connections/${mine}`);
    expect(theirs.status).toBe(404);
    expect(errorCode(theirs)).toBe('bank.connection-not-found');
  });

  it('over the rate: 429 bank.rate-limited with Retry-After', async () => {
    const all = await Promise.all(Array.from({ length: 20 }, () => call(client(bankB), 'GET', '/v1/bank/connections/aaaaaaaaaaaa')));
    const limited = all.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(errorCode(limited[0]!)).toBe('bank.rate-limited');
    expect(Number(limited[0]!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // bank A has its own bucket
    const a = await call(client(bankA), 'GET', '/v1/bank/connections/aaaaaaaaaaaa');
    expect(a.status).toBe(404);
  });

  it('the public banks list (operator listener, no sign-in)', async () => {
    const r = await fetch(`${stack.server.httpUrl}/v1/public/banks`); // no sign-in: a public route;
    expect(r.status).toBe(200);
    const body = (await r.json()) as { banks: { id: string; name: string; site?: string; since: string }[] };
    expect(body.banks.map((b) => b.id)).toEqual(['bank-a', 'bank-b']);
    expect(body.banks[0]).toMatchObject({ name: 'Bank A', site: 'https://bank-a.example/' });
  });

  it('a body over 16 KiB is refused unread (400 server.bad-request)', async () => {
    const big = await connect(client(bankA), 'conn-0006-too-big', { applicant: { personId: 'p-big' }, pan: MIR_PAN, expiry: '12/30', pad: 'x'.repeat(20_000) });
    expect(big.status).toBe(400);
    expect(errorCode(big)).toBe('server.bad-request');
    expect(stack.server.db.prepare("SELECT 1 FROM cards WHERE person_id = 'p-big'").get()).toBeUndefined();
  });

  it("a bank's own self-signed certificate is trusted once registered, without a restart, and identifies the bank", async () => {
    const cnf = join(base, 'bank-c.cnf');
    writeFileSync(
      cnf,
      '[req]\ndistinguished_name=dn\nx509_extensions=ext\nprompt=no\n[dn]\nCN=bank-c\n[ext]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n',
    );
    const [crt, key] = [join(base, 'bank-c.crt'), join(base, 'bank-c.key')];
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', crt, '-days', '30', '-config', cnf],
      {
        stdio: 'ignore',
      },
    );
    const own = { cert: readFileSync(crt, 'utf8'), key: readFileSync(key, 'utf8') };
    // not trusted (no CA of ours signed it): refused in the handshake
    await expect(call(own, 'GET', '/v1/bank/connections/aaaaaaaaaaaa')).rejects.toThrow();
    addBank(stack.server.db, stack.dataDir, { id: 'bank-c', name: 'Bank C', certPem: own.cert });
    // registered: the listener's trust is reloaded (every refreshMs), no restart
    const r = await waitFor(() => call(own, 'GET', '/v1/bank/connections/aaaaaaaaaaaa'), { timeoutMs: 10_000, everyMs: 300, what: 'bank C trusted' });
    expect(r.status).toBe(404);
    expect(errorCode(r)).toBe('bank.connection-not-found');
  });

  it('no PAN in the registry file, the log, the outbox or any answer', async () => {
    const pans = [PAN.pensioner, PAN.student, MIR_PAN_2, '2200123456789018'];
    const bytes = registryContents(stack.server.db, stack.dataDir); // the SQLite files, or every row on PostgreSQL
    const outbox = (stack.server.db.prepare('SELECT body FROM bank_outbox').pluck().all() as string[]).join('\n');
    const requests = (stack.server.db.prepare('SELECT answer FROM bank_requests').pluck().all() as string[]).join('\n');
    expect(outbox.length).toBeGreaterThan(0);
    // the searches look at real content: the token and the bank's log lines are there
    expect(bytes).toContain(tokenOf(PAN.student, '09/31'));
    expect(stack.logs.text()).toContain('bank connection request answered');
    for (const pan of pans) {
      expect(bytes).not.toContain(pan);
      expect(stack.logs.text()).not.toContain(pan);
      expect(outbox).not.toContain(pan);
      expect(requests).not.toContain(pan);
      expect(receiver.requests.map((r) => r.raw).join('\n')).not.toContain(pan);
      for (const a of answers) expect(a).not.toContain(pan);
    }
  });
});
