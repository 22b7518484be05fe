import type { Chart } from '../../../protocol/reports.js';

/** Series colours, in order (distinguishable in print and for most colour-blind readers). */
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

export interface ChartGeometry {
  /** Plot area inside the margins. */
  plot: { x: number; y: number; w: number; h: number };
  yTicks: { y: number; label: string }[];
  /** x labels, thinned so they do not overlap. */
  xTicks: { x: number; label: string }[];
  /** Per series: bars (bar chart) or points (line chart), in the chart's units. */
  series: { name: string; color: string; points: { x: number; y: number }[]; bars: { x: number; y: number; w: number; h: number }[] }[];
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * Where everything of a chart goes in a box of `width` × `height`: the same
 * geometry is drawn as SVG (HTML) and as pdfkit vector paths (PDF).
 */
export function chartGeometry(c: Chart, width: number, height: number): ChartGeometry {
  const plot = { x: 56, y: 12, w: width - 56 - 16, h: height - 12 - 44 };
  const max = niceMax(Math.max(0, ...c.series.flatMap((s) => s.values)));
  const yTicks = [0, 1, 2, 3, 4].map((i) => {
    const v = (max * i) / 4;
    return { y: plot.y + plot.h - (plot.h * i) / 4, label: Number.isInteger(v) ? String(v) : v.toFixed(1) };
  });
  const n = Math.max(1, c.x.length);
  const slot = plot.w / n;
  const step = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plot.w / 44))));
  const xTicks = c.x.flatMap((label, i) => (i % step === 0 ? [{ x: plot.x + slot * (i + 0.5), label: label.length === 10 ? label.slice(8) : label }] : []));
  const k = Math.max(1, c.series.length);
  const barW = (slot * 0.8) / k;
  const series = c.series.map((s, si) => {
    const color = PALETTE[si % PALETTE.length] ?? '#000000';
    const points = s.values.map((v, i) => ({ x: plot.x + slot * (i + 0.5), y: plot.y + plot.h - (plot.h * v) / max }));
    const bars = s.values.map((v, i) => {
      const h = (plot.h * v) / max;
      return { x: plot.x + slot * i + slot * 0.1 + barW * si, y: plot.y + plot.h - h, w: barW, h };
    });
    return { name: s.name, color, points, bars };
  });
  return { plot, yTicks, xTicks, series };
}
