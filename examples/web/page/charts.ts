import uPlot from 'uplot';

/**
 * The demo's four charts, drawn by uPlot (loaded from the page's server as shipped): each is
 * built once and fed whole data arrays on every sample; widths follow the page.
 */

export const KIND_COLOURS: Record<string, string> = {
  'copy-engine': '#3b82f6',
  nvme: '#16a34a',
  nic: '#f59e0b',
  misbehaving: '#dc2626',
};
const WORKER_COLOURS = ['#6366f1', '#0ea5e9', '#14b8a6', '#a855f7', '#ec4899', '#84cc16', '#f97316', '#64748b'];
const FAULT_COLOURS = ['#dc2626', '#ea580c', '#9333ea', '#0891b2', '#4d7c0f'];
const WINDOW_SECONDS = 60;
const HEIGHT = 230;

const axisStyle = { stroke: '#475569', grid: { stroke: '#e2e8f0', width: 1 }, ticks: { stroke: '#cbd5e1', width: 1 } };

interface Chart {
  readonly plot: uPlot;
  resize(width: number): void;
}

function chart(options: uPlot.Options, target: HTMLElement): Chart {
  const plot = new uPlot(options, options.series.map(() => []) as unknown as uPlot.AlignedData, target);
  return { plot, resize: (width) => plot.setSize({ width, height: HEIGHT }) };
}

/** The x scale of a time chart: the last minute, sliding. */
function slidingWindow(): uPlot.Scale {
  return { time: false, range: (_u, _min, max) => [Math.max(0, (max ?? 0) - WINDOW_SECONDS), Math.max(WINDOW_SECONDS, max ?? 0)] };
}

export class ThroughputChart {
  readonly #chart: Chart;
  readonly #kinds: readonly string[];

  constructor(target: HTMLElement, width: number, kinds: readonly string[]) {
    this.#kinds = kinds;
    this.#chart = chart(
      {
        width,
        height: HEIGHT,
        scales: { x: slidingWindow(), y: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 0) * 1.1)] } },
        series: [
          { label: 'seconds', value: (_u, v) => (v == null ? '' : `${v.toFixed(1)} s`) },
          ...kinds.map((kind) => ({
            label: kind,
            stroke: KIND_COLOURS[kind],
            width: 2,
            fill: `${KIND_COLOURS[kind]}1a`,
            value: (_u: uPlot, v: number | null) => (v == null ? '' : `${v.toFixed(1)} MiB/s`),
          })),
        ],
        axes: [
          { ...axisStyle, label: 'seconds' },
          { ...axisStyle, label: 'MiB/s', size: 60 },
        ],
      },
      target,
    );
  }

  update(time: readonly number[], perKind: ReadonlyMap<string, readonly number[]>): void {
    this.#chart.plot.setData([time, ...this.#kinds.map((kind) => perKind.get(kind) ?? [])] as unknown as uPlot.AlignedData);
  }

  resize(width: number): void {
    this.#chart.resize(width);
  }
}

export class HitRateChart {
  #chart: Chart | null = null;
  #slots: number[] = [];
  readonly #target: HTMLElement;
  #width: number;

  constructor(target: HTMLElement, width: number) {
    this.#target = target;
    this.#width = width;
  }

  /** `rates` per worker slot, in percent (null where the worker did no lookup in that interval). */
  update(time: readonly number[], rates: ReadonlyMap<number, ReadonlyArray<number | null>>, labels: ReadonlyMap<number, string>): void {
    const slots = [...rates.keys()].sort((a, b) => a - b);
    if (this.#chart === null || slots.join() !== this.#slots.join()) this.#build(slots, labels);
    this.#chart!.plot.setData([time, ...slots.map((slot) => rates.get(slot)!)] as unknown as uPlot.AlignedData);
    slots.forEach((slot, i) => {
      const label = labels.get(slot);
      const legend = this.#target.querySelectorAll('.u-legend .u-series')[i + 1]?.querySelector('.u-label');
      if (label !== undefined && legend && legend.textContent !== label) legend.textContent = label;
    });
  }

  resize(width: number): void {
    this.#width = width;
    this.#chart?.resize(width);
  }

  #build(slots: number[], labels: ReadonlyMap<number, string>): void {
    this.#chart?.plot.destroy();
    this.#slots = slots;
    this.#chart = chart(
      {
        width: this.#width,
        height: HEIGHT,
        scales: { x: slidingWindow(), y: { range: [0, 100] } },
        series: [
          { label: 'seconds', value: (_u, v) => (v == null ? '' : `${v.toFixed(1)} s`) },
          ...slots.map((slot) => ({
            label: labels.get(slot) ?? `slot ${slot}`,
            stroke: WORKER_COLOURS[slot % WORKER_COLOURS.length],
            width: 2,
            value: (_u: uPlot, v: number | null) => (v == null ? '-' : `${v.toFixed(1)} %`),
          })),
        ],
        axes: [
          { ...axisStyle, label: 'seconds' },
          { ...axisStyle, label: 'IOTLB hits %', size: 60 },
        ],
      },
      this.#target,
    );
  }
}

export interface DomainBar {
  label: string;
  kind: string;
  mappedPages: number;
  mappings: number;
}

/** Mapped pages (left axis) and mappings (right axis) of each device's domain, as side-by-side bars. */
export class MappingsChart {
  readonly #chart: Chart;
  #labels: string[] = [];

  constructor(target: HTMLElement, width: number) {
    const bars = uPlot.paths.bars!;
    this.#chart = chart(
      {
        width,
        height: HEIGHT,
        legend: { show: true },
        scales: {
          x: { time: false, range: (_u, min, max) => [(min ?? 0) - 0.6, (max ?? 0) + 0.6] },
          pages: { range: (_u, _min, max) => [0, Math.max(8, (max ?? 0) * 1.15)] },
          count: { range: (_u, _min, max) => [0, Math.max(4, (max ?? 0) * 1.15)] },
        },
        series: [
          { label: 'domain', value: (_u, v) => (v == null ? '' : laneLabel(this.#labels, v)) },
          {
            label: 'mapped pages',
            scale: 'pages',
            stroke: '#0f766e',
            fill: '#14b8a6cc',
            paths: bars({ size: [0.38, 40], align: -1 }),
            points: { show: false },
          },
          { label: 'mappings', scale: 'count', stroke: '#7c3aed', fill: '#a78bfacc', paths: bars({ size: [0.38, 40], align: 1 }), points: { show: false } },
        ],
        axes: [
          { ...axisStyle, space: 30, incrs: [1], values: (_u, splits) => splits.map((v) => laneLabel(this.#labels, v)), size: 50 },
          { ...axisStyle, scale: 'pages', label: 'mapped pages', size: 60 },
          { ...axisStyle, scale: 'count', label: 'mappings', side: 1, grid: { show: false }, size: 50 },
        ],
      },
      target,
    );
  }

  update(domains: readonly DomainBar[]): void {
    this.#labels = domains.map((d) => d.label);
    this.#chart.plot.setData([domains.map((_, i) => i), domains.map((d) => d.mappedPages), domains.map((d) => d.mappings)]);
  }

  resize(width: number): void {
    this.#chart.resize(width);
  }
}

export interface FaultPoint {
  at: number;
  lane: number;
  typeName: string;
}

/** Each fault as a point: when (x), which device (y, one lane per device), what kind (colour). */
export class FaultTimeline {
  #chart: Chart | null = null;
  #types: string[] = [];
  #lanes: string[] = [];
  readonly #target: HTMLElement;
  #width: number;

  constructor(target: HTMLElement, width: number) {
    this.#target = target;
    this.#width = width;
    this.#build([]);
  }

  update(now: number, points: readonly FaultPoint[], lanes: readonly string[]): void {
    const types = [...new Set(points.map((p) => p.typeName))].sort();
    this.#lanes = [...lanes];
    if (types.join() !== this.#types.join()) this.#build(types);
    // uPlot wants one sorted x array; each type's series has its lane where it faulted, null elsewhere.
    const sorted = [...points].sort((a, b) => a.at - b.at);
    const x = [Math.max(0, now - WINDOW_SECONDS), ...sorted.map((p) => p.at), now];
    const series = types.map((type) => [null, ...sorted.map((p) => (p.typeName === type ? p.lane : null)), null]);
    this.#chart!.plot.setData([x, ...series] as unknown as uPlot.AlignedData);
  }

  resize(width: number): void {
    this.#width = width;
    this.#chart?.resize(width);
  }

  #build(types: string[]): void {
    this.#chart?.plot.destroy();
    this.#types = types;
    this.#chart = chart(
      {
        width: this.#width,
        height: HEIGHT,
        scales: {
          x: slidingWindow(),
          y: { range: () => [-0.7, Math.max(1, this.#lanes.length) - 0.3] },
        },
        series: [
          { label: 'seconds', value: (_u, v) => (v == null ? '' : `${v.toFixed(1)} s`) },
          ...types.map((type, i) => ({
            label: type,
            stroke: FAULT_COLOURS[i % FAULT_COLOURS.length],
            fill: FAULT_COLOURS[i % FAULT_COLOURS.length],
            paths: () => null,
            points: { show: true, size: 9, width: 1, fill: FAULT_COLOURS[i % FAULT_COLOURS.length] },
            value: (_u: uPlot, v: number | null) => (v == null ? '' : laneLabel(this.#lanes, v)),
          })),
        ],
        axes: [
          { ...axisStyle, label: 'seconds' },
          { ...axisStyle, size: 70, space: 14, incrs: [1], values: (_u, splits) => splits.map((v) => laneLabel(this.#lanes, v)) },
        ],
      },
      this.#target,
    );
  }
}

/** The label of the category at `value` (scales compute splits in floating point). */
function laneLabel(labels: readonly string[], value: number): string {
  const index = Math.round(value);
  return Math.abs(value - index) < 1e-6 ? (labels[index] ?? '') : '';
}
