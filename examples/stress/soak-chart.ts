import type { SoakFigures } from './soak-figures.js';

/**
 * An SVG chart of a soak: RSS (MiB, left axis) and page tables in use (right axis) over time,
 * the warm-up shaded, each restore a red line and each worker kill a tick, the slopes in the
 * title. Written next to the soak's JSON, for people who would rather look than read.
 */
export function soakChart(figures: SoakFigures): string {
  const W = 900;
  const H = 420;
  const left = 70;
  const right = 70;
  const top = 50;
  const bottom = 50;
  const samples = figures.samples;
  const tMax = Math.max(1, ...samples.map((s) => s.t), ...figures.events.map((e) => e.t));
  const mib = samples.map((s) => s.rssBytes / 2 ** 20);
  const rssMax = Math.max(1, ...mib) * 1.1;
  const tablesMax = Math.max(1, ...samples.map((s) => s.tables)) * 1.1;
  const x = (t: number) => left + ((W - left - right) * t) / tMax;
  const yRss = (v: number) => H - bottom - ((H - top - bottom) * v) / rssMax;
  const yTables = (v: number) => H - bottom - ((H - top - bottom) * v) / tablesMax;
  const line = (points: string[], color: string) => `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${points.join(' ')}"/>`;
  const ticks = (max: number, y: (v: number) => number, at: number, anchor: string, color: string) =>
    Array.from({ length: 6 }, (_, i) => (max / 1.1) * (i / 5))
      .map((v) => `<text x="${at}" y="${y(v) + 4}" font-size="11" text-anchor="${anchor}" fill="${color}">${v.toFixed(v < 10 ? 1 : 0)}</text>`)
      .join('');
  const title = `RSS ${(figures.rssSlopeBytesPerMinute / 2 ** 20).toFixed(2)} MiB/min (limit ${(figures.rssLimitBytesPerMinute / 2 ** 20).toFixed(1)}), page tables ${figures.tablesSlopePerMinute.toFixed(2)}/min (limit ${figures.tablesLimitPerMinute.toFixed(1)}) after warm-up: ${figures.flat.rss && figures.flat.tables ? 'flat' : 'NOT FLAT'}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<rect x="${left}" y="${top}" width="${x(figures.warmUpSeconds) - left}" height="${H - top - bottom}" fill="#eee"/>`,
    `<text x="${left + 4}" y="${top + 14}" font-size="11" fill="#888">warm-up</text>`,
    `<text x="${W / 2}" y="24" font-size="13" text-anchor="middle">${title}</text>`,
    `<line x1="${left}" y1="${H - bottom}" x2="${W - right}" y2="${H - bottom}" stroke="black"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${H - bottom}" stroke="#1f77b4"/>`,
    `<line x1="${W - right}" y1="${top}" x2="${W - right}" y2="${H - bottom}" stroke="#ff7f0e"/>`,
    ticks(rssMax, yRss, left - 6, 'end', '#1f77b4'),
    ticks(tablesMax, yTables, W - right + 6, 'start', '#ff7f0e'),
    ...Array.from({ length: 6 }, (_, i) => (tMax * i) / 5).map(
      (t) => `<text x="${x(t)}" y="${H - bottom + 16}" font-size="11" text-anchor="middle">${t.toFixed(0)} s</text>`,
    ),
    `<text x="${left - 50}" y="${top - 10}" font-size="12" fill="#1f77b4">RSS (MiB)</text>`,
    `<text x="${W - right - 20}" y="${top - 10}" font-size="12" fill="#ff7f0e">page tables</text>`,
    ...figures.events.map((e) =>
      e.kind === 'restore'
        ? `<line x1="${x(e.t)}" y1="${top}" x2="${x(e.t)}" y2="${H - bottom}" stroke="red" stroke-dasharray="4 3"/><text x="${x(e.t) + 4}" y="${top + 28}" font-size="11" fill="red">save + restore</text>`
        : `<line x1="${x(e.t)}" y1="${H - bottom}" x2="${x(e.t)}" y2="${H - bottom - 8}" stroke="#555"/>`,
    ),
    line(
      samples.map((s, i) => `${x(s.t).toFixed(1)},${yRss(mib[i]!).toFixed(1)}`),
      '#1f77b4',
    ),
    line(
      samples.map((s) => `${x(s.t).toFixed(1)},${yTables(s.tables).toFixed(1)}`),
      '#ff7f0e',
    ),
    `<text x="${W - right}" y="${H - 12}" font-size="11" text-anchor="end" fill="#555">ticks on the time axis: worker kills (${figures.workerKills})</text>`,
    '</svg>',
    '',
  ].join('\n');
}
