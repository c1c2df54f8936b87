import t from 'tap';
import { coverageProblems, stress } from '../stress/stress.js';
import { CANARY_WORD, DEVICE_VERSION, patternWord } from '../stress/page-ledger.js';
import { unexpectedWord } from '../stress/stress-worker.js';

// A bounded run of the concurrency proof (`npm run bench` runs a longer one): two workers
// DMA into one domain while the main thread unmaps, refills and remaps under them.
t.test('no DMA uses a translation torn or stale after unmap, and every byte moved is checked', async (t) => {
  const result = await stress(3, { workers: 2, seed: 11, untilCoveredSeconds: 60 });
  t.equal(result.violations, 0, result.firstViolation ?? 'no violation');
  t.ok(result.dmas > 1000, `${result.dmas} DMAs checked`);
  t.ok(result.remaps > 1000, `${result.remaps} remaps under them`);
  t.ok(result.rangeUnmaps > 10, `${result.rangeUnmaps} multi-page unmaps`);
  t.ok(result.bytesChecked > 0);
  t.ok(result.faults > 0, `${result.faults} DMAs met a slot while it was unmapped`);
  t.ok(result.guardPagesIntact, 'guard pages that were never mapped are untouched');
  // Every worker read and wrote every slot, and met every slot again after a remap.
  t.same(result.coverageProblems, []);
  t.same(result.coverage, [
    { reads: 1, writes: 1, transitions: 1 },
    { reads: 1, writes: 1, transitions: 1 },
  ]);
});

t.test('incomplete coverage is a failure of the check, named per worker and kind', async (t) => {
  // Workers that never write cannot have covered writes: the check must say so.
  const result = await stress(0.5, { workers: 2, seed: 3, writeShare: 0 });
  t.equal(result.violations, 0, result.firstViolation ?? 'no violation');
  t.same(
    result.coverageProblems.filter((line) => line.includes('without writes')).map((line) => line.replace(/ \(.*\)$/, '')),
    ['worker 0: 64 of 64 slots without writes', 'worker 1: 64 of 64 slots without writes'],
  );
  t.same(
    result.coverage.map((c) => c.writes),
    [0, 0],
  );
});

t.test('coverageProblems reports each slot left out, by worker and kind', async (t) => {
  const full = { reads: [1, 2, 3], writes: [1, 1, 1], transitions: [4, 4, 4], faults: [0, 0, 0] };
  t.same(coverageProblems([full, full]), []);
  t.same(coverageProblems([full, { ...full, reads: [1, 0, 3], transitions: [0, 0, 1] }]), [
    'worker 1: 1 of 3 slots without reads (1)',
    'worker 1: 2 of 3 slots without transitions (0, 1)',
  ]);
});

t.test('the checker tells a page another device was writing from a stale or foreign one', async (t) => {
  const slot = 5;
  const page = (fill: (w: number) => number) => Int32Array.from({ length: 1024 }, (_, w) => fill(w));
  const cpu = patternWord(slot, 3);
  const device = patternWord(slot, DEVICE_VERSION);
  t.equal(
    unexpectedWord(
      page(() => cpu),
      0,
      slot,
    ),
    -1,
    'the CPU version throughout',
  );
  t.equal(
    unexpectedWord(
      page((w) => (w < 300 ? device : cpu)),
      0,
      slot,
    ),
    -1,
    "another device's write under way: device words, then the CPU's",
  );
  t.equal(
    unexpectedWord(
      page((w) => (w < 300 ? cpu : device)),
      0,
      slot,
    ),
    -1,
    'and the other way round',
  );
  t.equal(
    unexpectedWord(
      page((w) => (w === 700 ? CANARY_WORD : cpu)),
      0,
      slot,
    ),
    700,
    'a canary word: the page was unmapped',
  );
  t.equal(
    unexpectedWord(
      page((w) => (w === 10 ? patternWord(slot + 1, 3) : cpu)),
      0,
      slot,
    ),
    10,
    "another slot's word",
  );
  t.equal(
    unexpectedWord(
      page((w) => (w < 512 ? cpu : patternWord(slot, 4))),
      0,
      slot,
    ),
    512,
    'two CPU versions: a stale page',
  );
  const two = new Int32Array(2048).fill(cpu);
  two[1024 + 7] = CANARY_WORD;
  t.equal(unexpectedWord(two, 1024, slot), 1024 + 7, 'the second page of a two-page read');
});
