import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../device/config/index.js';
import { PublicKey } from '../../protocol/api.js';
import { ErrorCode } from '../../protocol/errors.js';
import { ReportDoc } from '../../protocol/reports.js';
import { callApi } from '../../sync-server/commands/client.js';
import { verifyReport } from '../../sync-server/reports/sign.js';
import { expectRcError } from '../support/errors.js';
import { benefitsCsv, cardsCsv, tokenOf } from '../support/registry-csv.js';
import { busConfig, importText, openDevice, startStack, tap, type Device, type Stack } from '../support/sync-harness.js';
import { waitFor } from '../support/wait.js';
import { adminToken, operatorFetch } from '../support/operator-api.js';

/**
 * Reports on the real stack: two bus validators (the device runtime and store, test/fixtures/decide
 * tariff: route 7 35 ₽, route 12 40 ₽; pensioners free, schoolchildren 50 %) tap cards, upload their
 * journals over MQTT, the back office settles them; the report comes over HTTP, signed, and the CLI
 * writes and verifies it. Figures worked out by hand below.
 */
const run = promisify(execFile);
const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'sync-server/cli.ts', 'report', ...args], { timeout: 60_000 });
const msk = (local: string) => Date.parse(`${local}+03:00`);

describe('reports over HTTP and the CLI', () => {
  let stack: Stack;
  let devs: Device[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'rc-reports-it-'));
  beforeAll(async () => {
    stack = await startStack('embedded');
    process.env.RC_API_TOKEN = adminToken(stack); // callApi and the CLI runs below call the server as its admin
    const a = busConfig('bus-07-a123'); // route 7, vehicle A123
    const b: Config = { ...a, device: { ...a.device, id: 'bus-12-b456', route: '12', vehicle: 'B456' } } as Config;
    await stack.server.api.setConfig('rules', { schema: 1, tariff: a.tariff });
    await importText(stack, 'cards', cardsCsv(0, 20));
    await importText(stack, 'benefits', benefitsCsv(0, 5, 'pensioner'));
    await importText(stack, 'benefits', benefitsCsv(5, 5, 'schoolchild'));
    await importText(
      stack,
      'routes',
      'carrier_id,carrier_name,inn,route_id,valid_from\nC7,Элиста-Авто,7707083893,7,2026-01-01\nC12,ИП Бадмаев,500100732259,12,2026-01-01\n',
    );
    devs = [openDevice(stack, a.device.id), openDevice(stack, b.device.id)];
    const want = stack.server.publisher.version('transit');
    for (const d of devs) await waitFor(() => d.store.listVersion('transit') === want, { timeoutMs: 15_000, what: 'transit list on the device' });
    const [da, db] = devs as [Device, Device];
    expect(tap(da, a, tokenOf(1), msk('2026-11-10T09:00:00')).decision).toMatchObject({ fareKopecks: 0, benefit: 'pensioner' });
    expect(tap(da, a, tokenOf(6), msk('2026-11-11T09:00:00')).decision).toMatchObject({ fareKopecks: 1750, benefit: 'schoolchild' });
    expect(tap(da, a, tokenOf(15), msk('2026-11-12T09:00:00')).decision).toMatchObject({ fareKopecks: 3500, reason: 'full-fare' });
    expect(tap(db, b, tokenOf(2), msk('2026-11-10T10:00:00')).decision).toMatchObject({ fareKopecks: 0, benefit: 'pensioner' });
    expect(tap(db, b, tokenOf(7), msk('2026-11-11T10:00:00')).decision).toMatchObject({ fareKopecks: 2000, benefit: 'schoolchild' });
    for (const d of devs) {
      const last = d.store.lastSeq();
      await waitFor(() => d.store.ackedSeq() === last, { timeoutMs: 15_000, what: 'journal acknowledged' });
    }
    await stack.server.api.chargingRun(); // settles the uploaded journal
  }, 60_000);
  afterAll(async () => {
    for (const d of devs) await d.close();
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the compensation report signed with the key of GET /v1/public-key, numbers as worked out by hand', async () => {
    const doc = await callApi(stack.server.httpUrl, 'GET', '/v1/reports/compensation?month=2026-11', ReportDoc);
    const { pem } = await callApi(stack.server.httpUrl, 'GET', '/v1/public-key', PublicKey);
    expect(verifyReport(doc, pem).sha256).toBe(doc.signature!.sha256);
    const rows = doc.sections.find((s) => s.id === 'by-route')!.rows;
    expect(rows.map((r) => [r.carrier_id, r.route, r.category, r.trips, r.full_kopecks, r.paid_kopecks, r.compensation_kopecks])).toEqual([
      ['C12', '12', 'pensioner', 1, 4000, 0, 4000],
      ['C12', '12', 'schoolchild', 1, 4000, 2000, 2000],
      ['C7', '7', 'pensioner', 1, 3500, 0, 3500],
      ['C7', '7', 'schoolchild', 1, 3500, 1750, 1750],
    ]);
    expect(doc.sections.find((s) => s.id === 'by-carrier')!.totals).toMatchObject({
      trips: 4,
      full_kopecks: 15000,
      paid_kopecks: 3750,
      compensation_kopecks: 11250,
    });
    expect(doc.source).toMatchObject({ journalEntries: 5, tariffVersion: 3 });
  });

  it('refuses an unknown carrier (404), a future month and an unknown format (400)', async () => {
    const url = stack.server.httpUrl;
    await expectRcError(callApi(url, 'GET', '/v1/reports/compensation?month=2026-11&carrier=C99', ReportDoc), ErrorCode.ServerNotFound);
    await expectRcError(callApi(url, 'GET', '/v1/reports/compensation?month=2099-01', ReportDoc), ErrorCode.ServerBadRequest);
    await expectRcError(callApi(url, 'GET', '/v1/reports/compensation?month=2026-11&format=doc', ReportDoc), ErrorCode.ServerBadRequest);
    await expectRcError(callApi(url, 'GET', '/v1/reports/nothing?month=2026-11', ReportDoc), ErrorCode.ServerNotFound);
  });

  it('devices and charging reports answer', async () => {
    const dev = await callApi(stack.server.httpUrl, 'GET', '/v1/reports/devices?since=2026-11-01', ReportDoc);
    expect(dev.sections[0]!.rows.map((r) => [r.device, r.silent])).toEqual([
      ['bus-07-a123', 'no'],
      ['bus-12-b456', 'no'],
    ]);
    const ch = await callApi(stack.server.httpUrl, 'GET', '/v1/reports/charging?month=2026-11', ReportDoc);
    // closed days charged: 17.50 + 35.00 + 20.00 (free trips charge nothing)
    expect(ch.sections[0]!.totals).toMatchObject({ amount_kopecks: 7250 });
  });

  it('rc-sync-server report writes the JSON; report verify accepts it and refuses one digit changed', async () => {
    const file = join(dir, 'compensation.json');
    await cli('compensation', '--month', '2026-11', '--server', stack.server.httpUrl, '--out', file);
    const ok = await cli('verify', file, '--key-from-server', stack.server.httpUrl);
    expect(ok.stdout).toContain('signature OK');
    const text = readFileSync(file, 'utf8');
    const bad = join(dir, 'tampered.json');
    writeFileSync(bad, text.replace('"compensation_kopecks": 4000', '"compensation_kopecks": 4900'));
    const e = (await cli('verify', bad).catch((x: unknown) => x)) as { code: number; stderr: string };
    expect(e.code).toBe(1);
    expect(e.stderr).toContain('report.signature-invalid');
  }, 180_000); // three CLI runs through tsx: about 20 s each on a loaded 2-core machine

  it('answers every format over HTTP with the same bytes as the CLI, its Content-Type and a file name; the PDF and the XLSX open', async () => {
    const want = {
      json: 'application/json',
      csv: 'text/csv',
      xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
      pdf: 'application/pdf',
      html: 'text/html',
    } as const;
    const target = { httpUrl: stack.server.httpUrl, dataDir: stack.dataDir };
    for (const [format, type] of Object.entries(want)) {
      const res = await operatorFetch(target, `/v1/reports/compensation?month=2026-11&carrier=C7&format=${format}`);
      expect(res.status, format).toBe(200);
      expect(res.headers.get('content-type')!.split(';')[0], format).toBe(type);
      expect(res.headers.get('content-disposition'), format).toBe(`attachment; filename="compensation-C7-2026-11.${format}"`);
      const http = Buffer.from(await res.arrayBuffer());
      const file = join(dir, `cli.${format}`);
      await cli('compensation', '--month', '2026-11', '--carrier', 'C7', '--format', format, '--server', stack.server.httpUrl, '--out', file);
      expect(http.equals(readFileSync(file)), `${format}: HTTP bytes equal the CLI's`).toBe(true);
      if (format === 'json') expect(ReportDoc.parse(JSON.parse(http.toString('utf8'))).report).toBe('compensation');
      if (format === 'pdf') {
        expect(http.subarray(0, 5).toString('latin1')).toBe('%PDF-');
        const info = await run('pdfinfo', [file]);
        expect(info.stdout).toMatch(/Pages:\s+[1-9]/);
      }
      if (format === 'xlsx') {
        const wb = new ExcelJS.Workbook();
        await wb.xlsx.load(http as unknown as ArrayBuffer);
        expect(wb.worksheets.length).toBeGreaterThan(0);
        const cells = wb.worksheets.flatMap((ws) => ws.getSheetValues().flat().map(String));
        expect(cells).toContain('C7');
      }
    }
    // a carrier's report file by its own parameters only: no query text reaches the file name
    const odd = await operatorFetch(target, '/v1/reports/devices?since=2026-11-01&format=csv');
    expect(odd.headers.get('content-disposition')).toBe('attachment; filename="devices-2026-11-01.csv"');
  }, 300_000); // five CLI runs
});
