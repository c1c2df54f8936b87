/** RSS and page tables over a soak, and whether they stay flat after warm-up. */

export interface Sample {
  /** Seconds since the soak started. */
  t: number;
  rssBytes: number;
  tables: number;
}

export interface SoakFigures {
  samples: Sample[];
  events: Array<{ t: number; kind: 'restore' | 'kill' }>;
  /** Seconds excluded at the start (and after each restore, SETTLE_SECONDS more). */
  warmUpSeconds: number;
  rssSlopeBytesPerMinute: number;
  tablesSlopePerMinute: number;
  /** The largest slopes still called flat (see flatness). */
  rssLimitBytesPerMinute: number;
  tablesLimitPerMinute: number;
  flat: { rss: boolean; tables: boolean };
  workerKills: number;
  /** Kill tasks whose worker did not die (must stay 0). */
  workerKillsFailed: number;
  restores: number;
  restoreMismatch: string | null;
  /** Errors reported through onCallbackError (must stay empty). */
  callbackErrors: string[];
}

/** After a restore the new platform settles (its memory is committed, the old one collected) for this long, at most a tenth of the run. */
const SETTLE_SECONDS = 60;
/** Flat: RSS grows by at most 4 MiB per minute or 0.5 % of its mean per minute, whichever is larger. */
const RSS_FLOOR_BYTES_PER_MINUTE = 4 * 1024 * 1024;
const RSS_RELATIVE_PER_MINUTE = 0.005;
/** Flat: page tables grow by at most 2 per minute or 1 % of their mean per minute. */
const TABLES_FLOOR_PER_MINUTE = 2;
const TABLES_RELATIVE_PER_MINUTE = 0.01;

/** Least-squares slope of y over x (0 for fewer than 3 points). */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  if (points.length < 3) return 0;
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return sxx === 0 ? 0 : sxy / sxx;
}

/**
 * The slopes after warm-up (a quarter of the run, at most 60 s), per minute. A restore starts
 * a new platform, so the run is cut into segments at each restore (less SETTLE_SECONDS after
 * it); each segment's slope is its own, and the slopes are averaged weighted by the samples.
 * Growth is what a leak shows, so only a positive slope above the limit fails.
 */
export function flatness(samples: readonly Sample[], events: SoakFigures['events'], seconds: number): SoakFigures {
  const warmUpSeconds = Math.min(60, seconds / 4);
  const settle = Math.min(SETTLE_SECONDS, seconds / 10);
  const restores = events.filter((e) => e.kind === 'restore').map((e) => e.t);
  const cuts = [0, ...restores, Number.POSITIVE_INFINITY];
  let rssWeighted = 0;
  let tablesWeighted = 0;
  let weight = 0;
  for (let i = 0; i + 1 < cuts.length; i++) {
    const from = Math.max(cuts[i]! + (i === 0 ? 0 : settle), warmUpSeconds);
    const segment = samples.filter((s) => s.t >= from && s.t < cuts[i + 1]!);
    if (segment.length < 3) continue;
    rssWeighted += slope(segment.map((s) => [s.t / 60, s.rssBytes])) * segment.length;
    tablesWeighted += slope(segment.map((s) => [s.t / 60, s.tables])) * segment.length;
    weight += segment.length;
  }
  const measured = samples.filter((s) => s.t >= warmUpSeconds);
  const mean = (values: number[]) => (values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length);
  const rssSlopeBytesPerMinute = weight === 0 ? 0 : rssWeighted / weight;
  const tablesSlopePerMinute = weight === 0 ? 0 : tablesWeighted / weight;
  const rssLimitBytesPerMinute = Math.max(RSS_FLOOR_BYTES_PER_MINUTE, RSS_RELATIVE_PER_MINUTE * mean(measured.map((s) => s.rssBytes)));
  const tablesLimitPerMinute = Math.max(TABLES_FLOOR_PER_MINUTE, TABLES_RELATIVE_PER_MINUTE * mean(measured.map((s) => s.tables)));
  return {
    samples: [...samples],
    events: [...events],
    warmUpSeconds,
    rssSlopeBytesPerMinute,
    tablesSlopePerMinute,
    rssLimitBytesPerMinute,
    tablesLimitPerMinute,
    // Too few samples to judge is not flat: a soak must measure what it claims.
    flat: { rss: weight >= 3 && rssSlopeBytesPerMinute <= rssLimitBytesPerMinute, tables: weight >= 3 && tablesSlopePerMinute <= tablesLimitPerMinute },
    workerKills: 0,
    workerKillsFailed: 0,
    restores: 0,
    restoreMismatch: null,
    callbackErrors: [],
  };
}
