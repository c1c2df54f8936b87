import t from 'tap';
import { stress } from '../stress/stress.js';

// A bounded run of the concurrency proof (`npm run bench` runs a longer one): two workers
// DMA into one domain while the main thread unmaps, refills and remaps under them.
t.test('no DMA uses a translation torn or stale after unmap, and every byte moved is checked', async (t) => {
  const result = await stress(3, { workers: 2, seed: 11 });
  t.equal(result.violations, 0, result.firstViolation ?? 'no violation');
  t.ok(result.dmas > 1000, `${result.dmas} DMAs checked`);
  t.ok(result.remaps > 1000, `${result.remaps} remaps under them`);
  t.ok(result.rangeUnmaps > 10, `${result.rangeUnmaps} multi-page unmaps`);
  t.ok(result.bytesChecked > 0);
  t.ok(result.guardPagesIntact, 'guard pages that were never mapped are untouched');
});
