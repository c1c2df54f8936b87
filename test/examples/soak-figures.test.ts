import t from 'tap';
import { soakChart } from '../../examples/stress/soak-chart.js';
import { flatness, type Sample, slope } from '../../examples/stress/soak-figures.js';

const MiB = 2 ** 20;
/** One sample a second for `seconds`, RSS and tables as functions of time (s). */
function run(seconds: number, rss: (t: number) => number, tables: (t: number) => number): Sample[] {
  return Array.from({ length: seconds }, (_, t) => ({ t, rssBytes: rss(t), tables: tables(t) }));
}

t.test('slope is the least-squares slope', async (t) => {
  t.equal(
    slope([
      [0, 1],
      [1, 3],
      [2, 5],
    ]),
    2,
  );
  t.equal(slope([[0, 1]]), 0, 'too few points: no slope');
});

t.test('flat after warm-up passes; growth beyond the limits fails; noise and a high start do not', async (t) => {
  // Warm-up growth (the first minute) and noise do not count.
  const flat = flatness(
    run(
      600,
      (s) => (s < 60 ? 100 * MiB + s * 5 * MiB : 400 * MiB + ((s * 7919) % 13) * MiB),
      () => 300,
    ),
    [],
    600,
  );
  t.same(flat.flat, { rss: true, tables: true });
  t.equal(flat.warmUpSeconds, 60);
  t.ok(Math.abs(flat.tablesSlopePerMinute) < 1e-9);
  // 8 MiB a minute of RSS, steadily: a leak.
  const leaking = flatness(
    run(
      600,
      (s) => 400 * MiB + (s / 60) * 8 * MiB,
      () => 300,
    ),
    [],
    600,
  );
  t.same(leaking.flat, { rss: false, tables: true });
  t.ok(Math.abs(leaking.rssSlopeBytesPerMinute - 8 * MiB) < 1024, `slope ${leaking.rssSlopeBytesPerMinute / MiB} MiB/min`);
  // Page tables growing 5 a minute (limit: 2, or 1 % of 300 = 3): a leak.
  const tables = flatness(
    run(
      600,
      () => 400 * MiB,
      (s) => 300 + Math.floor(s / 12),
    ),
    [],
    600,
  );
  t.same(tables.flat, { rss: true, tables: false });
  // Shrinking is not a leak.
  t.same(
    flatness(
      run(
        600,
        (s) => 900 * MiB - s * MiB,
        () => 300,
      ),
      [],
      600,
    ).flat,
    { rss: true, tables: true },
  );
});

t.test('a restore cuts the run into segments: the jump across it is no slope, growth within them is', async (t) => {
  const jump = flatness(
    run(
      600,
      (s) => (s < 300 ? 400 * MiB : 700 * MiB),
      (s) => (s < 300 ? 200 : 260),
    ),
    [{ t: 300, kind: 'restore' }],
    600,
  );
  t.same(jump.flat, { rss: true, tables: true });
  const leak = flatness(
    run(
      600,
      (s) => (s < 300 ? 400 * MiB : 700 * MiB) + s * 0.5 * MiB,
      () => 200,
    ),
    [{ t: 300, kind: 'restore' }],
    600,
  );
  t.same(leak.flat, { rss: false, tables: true }, '30 MiB a minute in both segments');
});

t.test('too few samples after warm-up is not flat: a soak must measure what it claims', async (t) => {
  t.same(
    flatness(
      run(
        2,
        () => MiB,
        () => 1,
      ),
      [],
      2,
    ).flat,
    { rss: false, tables: false },
  );
});

t.test('the chart draws both series, the restore and the verdict', async (t) => {
  const figures = flatness(
    run(
      120,
      () => 400 * MiB,
      () => 300,
    ),
    [
      { t: 60, kind: 'restore' },
      { t: 30, kind: 'kill' },
    ],
    120,
  );
  const svg = soakChart({ ...figures, workerKills: 1 });
  t.match(svg, /<polyline[^>]+points="70\.0,/);
  t.equal((svg.match(/<polyline/g) ?? []).length, 2);
  t.match(svg, /save \+ restore/);
  t.match(svg, /: flat<\/text>/);
  t.match(svg, /worker kills \(1\)/);
});
