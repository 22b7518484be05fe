import { existsSync } from 'node:fs';
import PDFDocument from 'pdfkit';
import { ErrorCode, RcError } from '../../../protocol/errors.js';
import type { Chart, Column, ReportDoc, Row, Section } from '../../../protocol/reports.js';
import { bi, cellText, fixedDate, footerLines, paramsLine, sourceLine } from './cells.js';
import { chartGeometry } from './chart.js';

/** A font with Cyrillic (Debian's fonts-dejavu-core); RC_REPORT_FONT_DIR overrides the folder. */
function fontPath(name: string): string {
  const dir = process.env.RC_REPORT_FONT_DIR ?? '/usr/share/fonts/truetype/dejavu';
  const p = `${dir}/${name}`;
  if (!existsSync(p)) {
    throw new RcError(ErrorCode.ConfigInvalid, `report font ${p} is missing: install fonts-dejavu-core (or set RC_REPORT_FONT_DIR)`, { font: p });
  }
  return p;
}

type Doc = InstanceType<typeof PDFDocument>;
const MARGIN = 36;
const FOOTER_H = 30;
const ONE_LINE = 7.5 * 1.2 + 4; // one line of 7.5 pt text and its padding

function drawChart(pdf: Doc, c: Chart, x: number, y: number, w: number, h: number): void {
  const g = chartGeometry(c, w, h);
  const p = g.plot;
  pdf.save().translate(x, y);
  pdf.font('sans').fontSize(9).fillColor('#000000').text(bi(c.title), 0, -12, { width: w, lineBreak: false });
  pdf.rect(p.x, p.y, p.w, p.h).fillAndStroke('#fafafa', '#999999');
  pdf.lineWidth(0.5);
  for (const t of g.yTicks) {
    pdf
      .moveTo(p.x, t.y)
      .lineTo(p.x + p.w, t.y)
      .stroke('#dddddd');
    pdf
      .fillColor('#000000')
      .fontSize(7)
      .text(t.label, 0, t.y - 3.5, { width: p.x - 4, align: 'right', lineBreak: false });
  }
  for (const t of g.xTicks) pdf.fontSize(7).text(t.label, t.x - 12, p.y + p.h + 3, { width: 24, align: 'center', lineBreak: false });
  for (const s of g.series) {
    if (c.kind === 'bar') {
      for (const b of s.bars) if (b.h > 0) pdf.rect(b.x, b.y, b.w, b.h).fill(s.color);
    } else if (s.points.length > 0) {
      const [first, ...rest] = s.points;
      if (first) {
        pdf.lineWidth(1.5).moveTo(first.x, first.y);
        for (const q of rest) pdf.lineTo(q.x, q.y);
        pdf.stroke(s.color);
        for (const q of s.points) pdf.circle(q.x, q.y, 1.6).fill(s.color);
      }
    }
  }
  pdf
    .fillColor('#000000')
    .fontSize(8)
    .text(bi(c.xTitle), p.x, h - 26, { width: p.w, align: 'center', lineBreak: false });
  pdf
    .save()
    .translate(6, p.y + p.h / 2)
    .rotate(-90);
  pdf.fontSize(8).text(bi(c.yTitle), -p.h / 2, 0, { width: p.h, align: 'center', lineBreak: false });
  pdf.restore();
  let lx = p.x;
  for (const s of g.series) {
    pdf.rect(lx, h - 10, 7, 7).fill(s.color);
    pdf
      .fillColor('#000000')
      .fontSize(7)
      .text(s.name, lx + 10, h - 10, { lineBreak: false });
    lx += 20 + pdf.widthOfString(s.name);
  }
  pdf.restore();
}

function widths(cols: Column[], total: number): number[] {
  const weight = cols.map((c) => (c.kind === 'text' ? 2.2 : c.kind === 'date' ? 1.3 : 1));
  const sum = weight.reduce((a, b) => a + b, 0);
  return weight.map((x) => (total * x) / sum);
}

function drawSection(pdf: Doc, s: Section, bottom: number): void {
  const left = MARGIN;
  const total = pdf.page.width - 2 * MARGIN;
  const ws = widths(s.columns, total);
  const num = (c: Column) => c.kind !== 'text' && c.kind !== 'date' && c.kind !== 'time';
  const rowH = (cells: string[], size: number) => {
    pdf.fontSize(size);
    return Math.max(...cells.map((t, i) => pdf.heightOfString(t, { width: (ws[i] ?? 10) - 4 }))) + 4;
  };
  const header = () => {
    const cells = s.columns.map((c) => bi(c.title));
    pdf.font('sans-bold');
    const h = rowH(cells, 7);
    const y = pdf.y;
    pdf.rect(left, y, total, h).fill('#eef2f7');
    let x = left;
    pdf.fillColor('#000000').fontSize(7);
    cells.forEach((t, i) => {
      pdf.text(t, x + 2, y + 2, { width: (ws[i] ?? 10) - 4 });
      x += ws[i] ?? 0;
    });
    pdf.font('sans');
    pdf.y = y + h;
  };
  if (pdf.y + 60 > bottom) pdf.addPage();
  pdf
    .font('sans-bold')
    .fontSize(11)
    .fillColor('#000000')
    .text(s.title.ru, left, pdf.y + 6);
  pdf.font('sans').fontSize(9).fillColor('#555555').text(s.title.en, left);
  pdf.moveDown(0.3);
  header();
  const line = (r: Row, bold: boolean) => {
    const cells = s.columns.map((c) => cellText(c, r));
    // a row is one line unless a cell is wider than its column: measuring every cell of a
    // 20,000-row report would cost more than drawing it
    pdf.font(bold ? 'sans-bold' : 'sans').fontSize(7.5);
    const fits = cells.every((t, i) => t.length < 8 || pdf.widthOfString(t) <= (ws[i] ?? 10) - 4);
    const h = fits ? ONE_LINE : rowH(cells, 7.5);
    if (pdf.y + h > bottom) {
      pdf.addPage();
      header();
    }
    const y = pdf.y;
    if (bold) pdf.rect(left, y, total, h).fill('#f3f3f3');
    pdf
      .lineWidth(0.3)
      .moveTo(left, y + h)
      .lineTo(left + total, y + h)
      .stroke('#cccccc');
    let x = left;
    pdf
      .font(bold ? 'sans-bold' : 'sans')
      .fontSize(7.5)
      .fillColor('#000000');
    s.columns.forEach((c, i) => {
      const w = (ws[i] ?? 10) - 4;
      pdf.text(cells[i] ?? '', x + 2, y + 2, { width: w, align: num(c) ? 'right' : 'left', lineBreak: !fits });
      x += ws[i] ?? 0;
    });
    pdf.y = y + h;
  };
  for (const r of s.rows) line(r, false);
  if (s.totals) line(s.totals, true);
  pdf.font('sans');
}

/**
 * The report as PDF (A4 landscape) written by pdfkit with DejaVu Sans (it has
 * Cyrillic): title in Russian then English, period and parameters, the charts
 * drawn as vector paths, each section as a table that repeats its header on
 * a new page, notes, and on every page a footer with the SHA-256 and the
 * Ed25519 signature (or "not signed") and the page number. The metadata dates
 * are the period's end, so the same document gives the same bytes.
 */
export function renderPdf(doc: ReportDoc): Promise<Buffer> {
  const at = fixedDate(doc);
  const pdf = new PDFDocument({
    size: 'A4',
    layout: 'landscape',
    margins: { top: MARGIN, bottom: MARGIN, left: MARGIN, right: MARGIN },
    bufferPages: true,
    autoFirstPage: true,
    info: { Title: bi(doc.title), Author: 'Resident Card sync-server', Creator: 'Resident Card sync-server', CreationDate: at, ModDate: at },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pdf.on('data', (c: Buffer) => chunks.push(c));
    pdf.on('end', () => resolve(Buffer.concat(chunks)));
    pdf.on('error', reject);
  });
  pdf.registerFont('sans', fontPath('DejaVuSans.ttf'));
  pdf.registerFont('sans-bold', fontPath('DejaVuSans-Bold.ttf'));
  const bottom = () => pdf.page.height - MARGIN - FOOTER_H;
  const width = pdf.page.width - 2 * MARGIN;

  pdf.font('sans-bold').fontSize(16).fillColor('#000000').text(doc.title.ru, MARGIN, MARGIN);
  pdf.font('sans').fontSize(12).fillColor('#555555').text(doc.title.en);
  pdf.moveDown(0.4).fontSize(8.5).fillColor('#333333');
  pdf.text(`Период / Period: ${doc.period.from} — ${doc.period.to}`);
  pdf.text(`Параметры / Parameters: ${paramsLine(doc)}`);
  pdf.text(`Источник / Source: ${sourceLine(doc)}`);
  for (const c of doc.charts) {
    const h = 200;
    if (pdf.y + h + 24 > bottom()) pdf.addPage();
    const y = pdf.y + 18;
    drawChart(pdf, c, MARGIN, y, width, h);
    pdf.x = MARGIN;
    pdf.y = y + h + 8;
  }
  for (const s of doc.sections) drawSection(pdf, s, bottom());
  if (doc.notes.length > 0) {
    if (pdf.y + 40 > bottom()) pdf.addPage();
    pdf.moveDown(0.6);
    for (const n of doc.notes) {
      pdf.font('sans').fontSize(8).fillColor('#000000').text(`• ${n.ru}`, MARGIN, pdf.y, { width });
      pdf.fillColor('#555555').text(`  ${n.en}`, { width });
    }
  }
  const range = pdf.bufferedPageRange();
  const foot = footerLines(doc);
  for (let i = range.start; i < range.start + range.count; i++) {
    pdf.switchToPage(i);
    const y = pdf.page.height - MARGIN - FOOTER_H + 6;
    pdf
      .lineWidth(0.5)
      .moveTo(MARGIN, y - 3)
      .lineTo(pdf.page.width - MARGIN, y - 3)
      .stroke('#999999');
    pdf.font('sans').fontSize(6.5).fillColor('#333333');
    foot.forEach((l, k) => pdf.text(l, MARGIN, y + k * 8, { width: width - 60, lineBreak: false, height: 8 }));
    pdf.text(`${i - range.start + 1} / ${range.count}`, pdf.page.width - MARGIN - 50, y, { width: 50, align: 'right', lineBreak: false });
  }
  pdf.end();
  return done;
}
