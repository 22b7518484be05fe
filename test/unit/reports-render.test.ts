import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ExcelJS from 'exceljs';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { canonicalJson, ReportDoc } from '../../protocol/reports.js';
import { render, REPORT_FORMATS } from '../../sync-server/reports/render/index.js';
import { pngInkShare } from '../support/png.js';

/**
 * The format writers over one report document: every format shows the same
 * numbers, Russian first and English second, the signature footer when the
 * document is signed, and the same document gives the same bytes whatever the
 * clock says. The PDF is rasterised with pdftoppm and must not be blank.
 */
const DOC: ReportDoc = ReportDoc.parse({
  report: 'meals',
  title: { ru: 'Питание: школа S1, 2026-11', en: 'Meals: school S1, 2026-11' },
  params: { month: '2026-11', school: 'S1' },
  period: { from: '2026-11-01', to: '2026-11-30' },
  source: { journalEntries: 8, rulesVersion: 1 },
  sections: [
    {
      id: 'subsidy',
      title: { ru: 'Ведомость субсидии', en: 'Subsidy sheet' },
      columns: [
        { key: 'meal', title: { ru: 'Питание', en: 'Meal' }, kind: 'text' },
        { key: 'free', title: { ru: 'Бесплатных порций', en: 'Free meals' }, kind: 'int' },
        { key: 'amount', title: { ru: 'Субсидия, ₽', en: 'Subsidy, ₽' }, kind: 'kopecks' },
        { key: 'rate', title: { ru: 'Доля', en: 'Share' }, kind: 'percent' },
      ],
      rows: [
        { meal: 'breakfast', free: 2, amount: 12000, rate: 55.8 },
        { meal: '=cmd()', free: 1, amount: 9505, rate: 44.2 },
      ],
      totals: { meal: 'Итого / Total', free: 3, amount: 21505, rate: 100 },
    },
  ],
  charts: [
    {
      title: { ru: 'Бесплатное питание по дням', en: 'Free meals per day' },
      kind: 'line',
      xTitle: { ru: 'День', en: 'Day' },
      yTitle: { ru: 'Порций', en: 'Meals' },
      x: ['2026-11-02', '2026-11-03', '2026-11-04'],
      series: [{ name: 'breakfast', values: [1, 1, 0] }],
    },
  ],
  notes: [{ ru: 'Имён нет.', en: 'No names.' }],
});

function signed(doc: ReportDoc): ReportDoc {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const sha = createHash('sha256')
    .update(canonicalJson({ ...doc, signature: undefined }))
    .digest();
  return {
    ...doc,
    signature: {
      alg: 'ed25519',
      sha256: sha.toString('hex'),
      sig: sign(null, sha, privateKey).toString('base64'),
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    },
  };
}

const dirs: string[] = [];
afterEach(() => {
  vi.useRealTimers();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'rc-render-'));
  dirs.push(d);
  return d;
}

describe('report formats', () => {
  it('the same document gives the same bytes in every format, whatever the clock says', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    for (const f of REPORT_FORMATS) {
      vi.setSystemTime(new Date('2026-12-01T10:00:00Z'));
      const a = await render(DOC, f);
      vi.setSystemTime(new Date('2027-03-15T18:31:07Z'));
      const b = await render(DOC, f);
      expect(a.length, f).toBeGreaterThan(100);
      expect(a.equals(b), `${f} differs between two renders`).toBe(true);
    }
  });

  it('JSON is the canonical JSON of the document', async () => {
    const d = signed(DOC);
    const j = (await render(d, 'json')).toString('utf8');
    expect(j).toBe(`${canonicalJson(d)}\n`);
    expect(ReportDoc.parse(JSON.parse(j))).toEqual(d);
  });

  it('CSV: one file, bilingual headers, rubles with two decimals, totals, formulas defused, the signature at the end', async () => {
    const d = signed(DOC);
    const csv = (await render(d, 'csv')).toString('utf8');
    expect(csv.startsWith('\uFEFF')).toBe(true);
    const lines = csv.slice(1).split('\r\n');
    expect(lines).toContain('Питание / Meal,Бесплатных порций / Free meals,"Субсидия, ₽ / Subsidy, ₽",Доля / Share');
    expect(lines).toContain('breakfast,2,120.00,55.8 %');
    expect(lines).toContain("'=cmd(),1,95.05,44.2 %");
    expect(lines).toContain('Итого / Total,3,215.05,100.0 %');
    expect(lines).toContain(`SHA-256: ${d.signature?.sha256}`);
    expect(lines.some((l) => l.startsWith('Ed25519: '))).toBe(true);
  });

  it('HTML: self-contained (inline CSS and SVG, no script, no external asset), the signature in the footer', async () => {
    const d = signed(DOC);
    const html = (await render(d, 'html')).toString('utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('<polyline');
    expect(html).not.toMatch(/<script|<link|<img|src=|url\(/i);
    expect(html.replace('xmlns="http://www.w3.org/2000/svg"', '')).not.toMatch(/https?:\/\//);
    expect(html).toContain('Ведомость субсидии');
    expect(html).toContain('Subsidy sheet');
    expect(html).toContain('215.05');
    expect(html).toContain('<td>=cmd()</td>'); // a cell is text in HTML, never run
    expect(html).toMatch(new RegExp(`<footer>SHA-256: ${d.signature?.sha256}<br>Ed25519: `));
    expect((await render(DOC, 'html')).toString('utf8')).toContain('<footer>Не подписан / Not signed</footer>');
  });

  it('XLSX: a sheet per section with numbers kept as numbers, read back by exceljs', async () => {
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load((await render(signed(DOC), 'xlsx')) as never);
    expect(wb.worksheets.map((w) => w.name)).toEqual(['Отчёт-Report', 'subsidy']);
    const ws = wb.getWorksheet('subsidy');
    expect(ws?.getRow(2).getCell(3).value).toBe('Субсидия, ₽ / Subsidy, ₽');
    expect(ws?.getRow(3).values).toEqual([undefined, 'breakfast', 2, 120, 55.8]);
    expect(ws?.getRow(5).values).toEqual([undefined, 'Итого / Total', 3, 215.05, 100]);
    const info = wb.getWorksheet('Отчёт-Report');
    const texts: string[] = [];
    info?.eachRow((r) => texts.push(String(r.getCell(2).value ?? r.getCell(1).value)));
    expect(texts.some((t) => t.startsWith('SHA-256: '))).toBe(true);
    expect(wb.created.toISOString()).toBe('2026-11-30T00:00:00.000Z');
  });

  it('PDF: Cyrillic text, the numbers and the signature footer; pdftoppm renders a page that is not blank', async () => {
    const d = signed(DOC);
    const dir = tmp();
    const pdf = await render(d, 'pdf');
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    writeFileSync(join(dir, 'r.pdf'), pdf);
    const text = execFileSync('pdftotext', ['-layout', join(dir, 'r.pdf'), '-'], { encoding: 'utf8' });
    expect(text).toContain('Питание: школа S1, 2026-11');
    expect(text).toContain('Ведомость субсидии');
    expect(text).toContain('215.05');
    expect(text).toContain(`SHA-256: ${d.signature?.sha256}`);
    execFileSync('pdftoppm', ['-png', '-r', '40', join(dir, 'r.pdf'), join(dir, 'page')]);
    const pages = readdirSync(dir).filter((f) => f.endsWith('.png'));
    expect(pages.length).toBe(1);
    const ink = pngInkShare(readFileSync(join(dir, pages[0] ?? '')));
    expect(ink.width).toBeGreaterThan(400); // A4 landscape at 40 dpi: 468 × 331
    expect(ink.share).toBeGreaterThan(0.01);
  });

  it('refuses a document that is not a ReportDoc', async () => {
    await expect(render({ ...DOC, report: 'nope' } as never, 'csv')).rejects.toThrow();
  });
});
