import t from 'tap';
import { Iotlb, IotlbArray, SPAN_1G, SPAN_2M, SPAN_RUN } from '../../iommu/data-plane/iotlb.js';
import { LeafReach } from '../../iommu/data-plane/leaf-results.js';
import { rng } from '../helpers/fixture.js';

/** The first `count` tags (from `start` on) that land in the set of (domain, anchor). */
function tagsInSameSet(array: IotlbArray, domain: number, anchor: number, count: number, start = 0): number[] {
  const set = array.setOf(domain, anchor);
  const tags: number[] = [];
  for (let tag = start; tags.length < count; tag++) if (array.setOf(domain, tag) === set) tags.push(tag);
  return tags;
}

t.test('the constructor refuses shapes that are not a power of two of sets', async (t) => {
  t.throws(() => new IotlbArray(12, 4, 1), RangeError, '3 sets');
  t.throws(() => new IotlbArray(16, 0, 1), RangeError, '0 ways');
  t.throws(() => new IotlbArray(512, 256, 1), RangeError, '256 ways');
  t.throws(() => new Iotlb({ entries: 100 }), RangeError);
  const tlb = new Iotlb();
  t.equal(tlb.pages.capacity, 4096);
  t.equal(tlb.pages.sets, 1024);
  t.equal(tlb.blocks2M.capacity, 64);
  t.equal(tlb.blocks1G.spanPages, SPAN_1G);
});

t.test('hit, miss, domain and generation tags', async (t) => {
  const tlb = new Iotlb({ entries: 64, ways: 4, largeEntries: 8 });
  const reach = new LeafReach();
  t.equal(tlb.lookup(1, 77, 5, reach), -1);
  t.equal(tlb.misses, 1);
  tlb.insert(1, 77, 1, 5, 1234, 3);
  t.equal(tlb.lookup(1, 77, 5, reach), 1234 * 4 + 3);
  t.equal(reach.pagesLeft, 1, 'a 4 KiB leaf reaches one page');
  t.equal(tlb.hits, 1);
  t.equal(tlb.lookup(1, 77, 6, reach), -1, 'a newer generation misses');
  t.equal(tlb.lookup(1, 77, 4, reach), -1, 'an older generation misses');
  t.equal(tlb.lookup(2, 77, 5, reach), -1, 'another domain misses');
  t.equal(tlb.lookup(1, 78, 5, reach), -1, 'the next page misses');
  t.equal(tlb.misses, 5);
  tlb.insert(1, 77, 1, 6, 999, 1);
  t.equal(tlb.lookup(1, 77, 6, reach), 999 * 4 + 1, 're-inserting replaces the translation');
  t.equal(tlb.lookup(1, 77, 5, reach), -1, 'the old generation is gone');
  const high = 2 ** 33 + 5;
  tlb.insert(3, high, 1, 0, 2 ** 28 - 1, 2);
  t.equal(tlb.lookup(3, high, 0, reach), (2 ** 28 - 1) * 4 + 2, 'pages above 2^32 and the largest frame');
  t.equal(tlb.lookup(3, high - 2 ** 32, 0, reach), -1, 'no aliasing of page mod 2^32');
  t.equal(tlb.hits, 3);
});

t.test('2 MiB and 1 GiB leaves answer for every page they span', async (t) => {
  const tlb = new Iotlb({ entries: 64, ways: 4, largeEntries: 8 });
  const reach = new LeafReach();
  tlb.insert(1, SPAN_2M * 7, SPAN_2M, 2, 4096, 1);
  tlb.insert(1, SPAN_1G * 3, SPAN_1G, 2, SPAN_1G, 3);
  t.equal(tlb.lookup(1, SPAN_2M * 7, 2, reach), 4096 * 4 + 1);
  t.equal(reach.pagesLeft, SPAN_2M, 'from its first page a 2 MiB leaf reaches 512 pages');
  t.equal(tlb.lookup(1, SPAN_2M * 7 + 511, 2, reach), (4096 + 511) * 4 + 1);
  t.equal(reach.pagesLeft, 1, 'from its last page, one');
  t.equal(tlb.lookup(1, SPAN_2M * 8, 2, reach), -1, 'one page past the 2 MiB leaf');
  t.equal(tlb.lookup(1, SPAN_2M * 7 - 1, 2, reach), -1, 'one page before it');
  t.equal(tlb.lookup(1, SPAN_1G * 3 + 262143, 2, reach), (SPAN_1G + 262143) * 4 + 3);
  t.equal(reach.pagesLeft, 1);
  t.equal(tlb.lookup(1, SPAN_1G * 3 + 9, 2, reach), (SPAN_1G + 9) * 4 + 3);
  t.equal(reach.pagesLeft, SPAN_1G - 9, 'a 1 GiB leaf reaches to its end');
  t.equal(tlb.lookup(1, SPAN_1G * 4, 2, reach), -1);
  t.equal(tlb.lookup(1, SPAN_1G * 3 + 9, 3, reach), -1, 'generation applies to large leaves too');
  tlb.insert(1, SPAN_1G * 3 + 9, 1, 2, 55, 2);
  t.equal(tlb.lookup(1, SPAN_1G * 3 + 9, 2, reach), 55 * 4 + 2, 'a 4 KiB entry is found first');
  t.equal(reach.pagesLeft, 1);
});

t.test('a run of 16 contiguous leaves answers for each of its pages, and says how far it reaches', async (t) => {
  const tlb = new Iotlb({ entries: 64, ways: 4, largeEntries: 8 });
  const reach = new LeafReach();
  tlb.insert(1, 2 * SPAN_RUN, SPAN_RUN, 0, 700, 3);
  t.equal(tlb.lookup(1, 2 * SPAN_RUN + 5, 0, reach), (700 + 5) * 4 + 3);
  t.equal(reach.pagesLeft, SPAN_RUN - 5, 'eleven pages of the run from its sixth page on');
  t.equal(tlb.lookup(1, 3 * SPAN_RUN, 0, reach), -1, 'the page after the run misses');
  t.equal(reach.pagesLeft, SPAN_RUN - 5, 'a miss leaves the reach alone');
});

t.test('a full set evicts round-robin, one entry per insert, and never touches other sets', async (t) => {
  const tlb = new Iotlb({ entries: 64, ways: 4, largeEntries: 8 });
  const reach = new LeafReach();
  const array = tlb.pages;
  const same = tagsInSameSet(array, 1, 0, 12);
  const setIndex = array.setOf(1, same[0]!);
  // One entry in every other set, in two domains, to watch for collateral damage.
  const others: Array<[number, number]> = [];
  for (let tag = 0; others.length < 2 * (array.sets - 1); tag++) {
    for (const domain of [1, 2]) {
      if (array.setOf(domain, tag) !== setIndex && !others.some(([d, tg]) => d === domain && array.setOf(d, tg) === array.setOf(domain, tag))) {
        others.push([domain, tag]);
      }
    }
  }
  for (const [domain, tag] of others) tlb.insert(domain, tag, 1, 0, 7000 + tag, 3);
  const present = (tags: number[]) => tags.filter((tag) => tlb.lookup(1, tag, 0, reach) >= 0);
  for (let i = 0; i < 4; i++) tlb.insert(1, same[i]!, 1, 0, 100 + i, 3);
  t.same(present(same.slice(0, 4)), same.slice(0, 4), 'four ways hold four tags');
  const expectedAfter: number[][] = [
    [same[1]!, same[2]!, same[3]!, same[4]!],
    [same[2]!, same[3]!, same[4]!, same[5]!],
    [same[3]!, same[4]!, same[5]!, same[6]!],
    [same[4]!, same[5]!, same[6]!, same[7]!],
    [same[5]!, same[6]!, same[7]!, same[8]!],
  ];
  for (let n = 0; n < expectedAfter.length; n++) {
    tlb.insert(1, same[4 + n]!, 1, 0, 104 + n, 3);
    t.same(present(same.slice(0, 9)), expectedAfter[n], `insert ${n + 5}: only the oldest way was replaced`);
  }
  tlb.insert(1, same[6]!, 1, 1, 555, 1);
  t.same(present(same.slice(0, 9)), [same[5]!, same[7]!, same[8]!], 'updating a cached tag evicts nobody else');
  t.equal(tlb.lookup(1, same[6]!, 1, reach), 555 * 4 + 1);
  const lost = others.filter(([domain, tag]) => tlb.lookup(domain, tag, 0, reach) !== (7000 + tag) * 4 + 3);
  t.same(lost, [], `all ${others.length} entries of the other sets survived`);
});

t.test('invalidateRange drops exactly the overlapping 4K/2M/1G entries of that domain', async (t) => {
  const random = rng(0x71b);
  for (const [label, first, count] of [
    ['short range (per-page path)', 5 * SPAN_2M + 500, 30],
    ['long range (scan path)', 5 * SPAN_2M + 300, 900],
    ['range inside one 1 GiB leaf only', SPAN_1G * 2 + 17, 3],
  ] as const) {
    const tlb = new Iotlb({ entries: 8192, ways: 8, largeEntries: 64 });
    const small: Array<[number, number]> = [];
    for (let page = 5 * SPAN_2M - 20; page < 8 * SPAN_2M; page += 1 + Math.floor(random() * 8)) {
      for (const domain of [1, 2]) small.push([domain, page]);
    }
    const blocks2M: Array<[number, number]> = [];
    for (let leaf = 2; leaf < 12; leaf++) for (const domain of [1, 2]) blocks2M.push([domain, leaf * SPAN_2M + SPAN_1G * 5]);
    blocks2M.push([1, 5 * SPAN_2M], [1, 6 * SPAN_2M], [1, 7 * SPAN_2M], [2, 6 * SPAN_2M]);
    const blocks1G: Array<[number, number]> = [
      [1, 0],
      [1, SPAN_1G],
      [1, SPAN_1G * 2],
      [2, 0],
      [2, SPAN_1G * 2],
    ];
    for (const [d, p] of small) tlb.insert(d, p, 1, 0, p % 1000, 3);
    for (const [d, p] of blocks2M) tlb.insert(d, p, SPAN_2M, 0, 4096, 1);
    for (const [d, p] of blocks1G) tlb.insert(d, p, SPAN_1G, 0, SPAN_1G, 2);
    const cached = (d: number, p: number, span: number) =>
      span === 1 ? tlb.pages.lookup(d, p, 0) >= 0 : (span === SPAN_2M ? tlb.blocks2M : tlb.blocks1G).lookup(d, p / span, 0) >= 0;
    const all: Array<[number, number, number]> = [
      ...small.map(([d, p]) => [d, p, 1] as [number, number, number]),
      ...blocks2M.map(([d, p]) => [d, p, SPAN_2M] as [number, number, number]),
      ...blocks1G.map(([d, p]) => [d, p, SPAN_1G] as [number, number, number]),
    ];
    t.same(
      all.filter(([d, p, s]) => !cached(d, p, s)),
      [],
      `${label}: everything cached before`,
    );
    tlb.invalidateRange(1, first, count);
    const wrong = all.filter(([d, p, s]) => cached(d, p, s) === (d === 1 && p < first + count && p + s > first));
    t.same(wrong, [], `${label}: dropped iff domain 1 and overlapping [${first}, +${count})`);
    const dropped = all.filter(([d, p, s]) => !cached(d, p, s));
    t.ok(
      dropped.some(([, , s]) => s === SPAN_1G),
      `${label}: some 1 GiB entry went`,
    );
    t.ok(dropped.length < all.length / 2, `${label}: most entries stayed (${all.length - dropped.length} of ${all.length})`);
  }
});

t.test('invalidate drops one tag; clear drops everything', async (t) => {
  const tlb = new Iotlb({ entries: 64, ways: 4, largeEntries: 8 });
  const reach = new LeafReach();
  tlb.insert(1, 10, 1, 0, 1, 1);
  tlb.insert(1, 11, 1, 0, 2, 1);
  tlb.insert(1, SPAN_2M, SPAN_2M, 0, 512, 3);
  tlb.insert(2, SPAN_1G, SPAN_1G, 0, SPAN_1G, 3);
  tlb.pages.invalidate(1, 10);
  t.equal(tlb.lookup(1, 10, 0, reach), -1);
  t.equal(tlb.lookup(1, 11, 0, reach), 2 * 4 + 1);
  tlb.clear();
  t.equal(tlb.lookup(1, 11, 0, reach), -1);
  t.equal(tlb.lookup(1, SPAN_2M + 1, 0, reach), -1);
  t.equal(tlb.lookup(2, SPAN_1G + 1, 0, reach), -1);
  t.same(
    [...tlb.pages.domain, ...tlb.blocks2M.domain, ...tlb.blocks1G.domain].filter((d) => d !== -1),
    [],
    'every way is empty',
  );
  tlb.insert(2, SPAN_1G, SPAN_1G, 0, SPAN_1G, 3);
  t.equal(tlb.lookup(2, SPAN_1G + 1, 0, reach), (SPAN_1G + 1) * 4 + 3, 'large entries work again after clear');
});
