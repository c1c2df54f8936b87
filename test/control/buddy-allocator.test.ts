import t from 'tap';
import { BuddyAllocator } from '../../iommu/control/buddy-allocator.js';
import { rng } from '../helpers/fixture.js';

/** Fisher-Yates with the seeded PRNG. */
function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

t.test('orderFor is the smallest order holding the pages', async (t) => {
  const cases: Array<[number, number]> = [
    [1, 0],
    [2, 1],
    [3, 2],
    [4, 2],
    [5, 3],
    [63, 6],
    [64, 6],
    [65, 7],
    [2 ** 20, 20],
    [2 ** 20 + 1, 21],
  ];
  for (const [pages, order] of cases) t.equal(BuddyAllocator.orderFor(pages), order, `${pages} pages -> order ${order}`);
});

t.test('the constructor refuses space orders outside 0..41', async (t) => {
  for (const bad of [-1, 42, 1.5, Number.NaN]) t.throws(() => new BuddyAllocator(bad), RangeError, `spaceOrder ${bad}`);
  const whole = new BuddyAllocator(41);
  t.equal(whole.spacePages, 2 ** 41);
  t.equal(whole.freePages, 2 ** 41);
  t.same(whole.freeBlocks(), [[0, 41]]);
  const tiny = new BuddyAllocator(0);
  t.equal(tiny.allocate(0), 0);
  t.equal(tiny.allocate(0), -1);
});

t.test('a fresh space hands out blocks lowest first', async (t) => {
  const buddy = new BuddyAllocator(6);
  t.equal(buddy.allocate(0), 0);
  t.equal(buddy.allocate(0), 1);
  t.equal(buddy.allocate(1), 2);
  t.equal(buddy.allocate(2), 4);
  t.equal(buddy.allocate(3), 8);
  t.equal(buddy.freePages, 64 - 16);
  t.same(buddy.freeBlocks(), [
    [16, 4],
    [32, 5],
  ]);
});

t.test('4096 mixed-size allocations: aligned, inside the space and their bounds, disjoint; all come back', async (t) => {
  const spaceOrder = 20;
  const buddy = new BuddyAllocator(spaceOrder);
  const used = new Uint8Array(buddy.spacePages);
  const random = rng(0xb0dd1);
  const blocks: Array<[first: number, order: number]> = [];
  let usedPages = 0;
  let bounded = 0;
  let problems = 0;
  const problem = (what: string) => {
    if (problems++ < 5) t.fail(what);
  };
  for (let n = 0; n < 4096; n++) {
    const pages = 1 + Math.floor(random() * 64);
    const order = BuddyAllocator.orderFor(pages);
    const size = 2 ** order;
    let low = 0;
    let high = buddy.spacePages;
    if (random() < 0.25) {
      // Bounds that need not be aligned to anything: [low, high) somewhere in the space.
      low = Math.floor(random() * (buddy.spacePages - 70000));
      high = low + 200 + Math.floor(random() * 65536);
      bounded++;
    }
    const first = low === 0 && high === buddy.spacePages ? buddy.allocate(order) : buddy.allocate(order, low, high);
    if (first < 0) {
      // Only acceptable if no aligned, entirely free block of that order lies inside the bounds.
      for (let s = Math.ceil(low / size) * size; s + size <= high; s += size) {
        if (used.subarray(s, s + size).every((b) => b === 0)) {
          problem(`allocation ${n} (order ${order} in [${low}, ${high})) returned -1 but [${s}, +${size}) is free`);
          break;
        }
      }
      continue;
    }
    if (first % size !== 0) problem(`block ${first} of order ${order} is not aligned to its size`);
    if (first < low || first + size > high) problem(`block ${first}+${size} lies outside [${low}, ${high})`);
    if (first + size > buddy.spacePages) problem(`block ${first}+${size} lies outside the space`);
    for (let p = first; p < first + size; p++) {
      if (used[p] !== 0) {
        problem(`block ${first} of order ${order} overlaps an earlier block at page ${p}`);
        break;
      }
      used[p] = 1;
    }
    usedPages += size;
    blocks.push([first, order]);
    if (buddy.freePages !== buddy.spacePages - usedPages)
      problem(`freePages ${buddy.freePages} after ${n + 1} allocations, expected ${buddy.spacePages - usedPages}`);
  }
  t.equal(problems, 0, 'every block is aligned, in bounds and disjoint');
  t.equal(blocks.length, 4096, 'no allocation failed');
  t.ok(bounded > 900 && bounded < 1150, `a quarter of the requests were bounded (${bounded})`);
  t.equal(buddy.freePages, buddy.spacePages - usedPages);
  // The free blocks are exactly the pages nobody holds.
  let freeFromBlocks = 0;
  for (const [first, order] of buddy.freeBlocks()) {
    freeFromBlocks += 2 ** order;
    if (first % 2 ** order !== 0 || used.subarray(first, first + 2 ** order).some((b) => b !== 0))
      problem(`free block ${first}/${order} is misaligned or in use`);
  }
  t.equal(freeFromBlocks, buddy.spacePages - usedPages, 'free blocks cover exactly the unused pages');

  for (const [first, order] of shuffle(blocks, random)) buddy.free(first, order);
  t.equal(buddy.freePages, buddy.spacePages, 'every page is free again');
  t.same(buddy.freeBlocks(), [[0, spaceOrder]], 'the space coalesced back into one block');
  t.equal(problems, 0);
});

t.test('exhaustion returns -1 and changes nothing', async (t) => {
  const buddy = new BuddyAllocator(3);
  t.equal(buddy.allocate(4), -1, 'an order above the space');
  t.equal(buddy.allocate(3), 0);
  t.equal(buddy.allocate(0), -1);
  t.equal(buddy.freePages, 0);
  t.same(buddy.freeBlocks(), []);
  buddy.free(0, 3);
  const pages: number[] = [];
  for (let i = 0; i < 8; i++) pages.push(buddy.allocate(0));
  t.same(
    [...pages].sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  t.equal(buddy.allocate(0), -1);
  t.equal(buddy.allocate(1), -1);
  buddy.free(5, 0);
  t.equal(buddy.allocate(1), -1, 'one free page cannot host an order-1 block');
  t.equal(buddy.freePages, 1);
  t.same(buddy.freeBlocks(), [[5, 0]]);
});

t.test('bounded requests take the lowest aligned block inside [low, high)', async (t) => {
  const buddy = new BuddyAllocator(4);
  t.equal(buddy.allocate(2, 5, 16), 8, 'first aligned start at or above 5');
  t.equal(buddy.allocate(2, 9, 16), 12);
  t.equal(buddy.allocate(2, 9, 16), -1, 'nothing of order 2 left in [9, 16)');
  t.equal(buddy.allocate(0, 3, 4), 3);
  t.equal(buddy.allocate(1, 1, 3), -1, 'no aligned pair fits inside [1, 3)');
  t.equal(buddy.freePages, 16 - 9);
  t.same(buddy.freeBlocks(), [
    [0, 1],
    [2, 0],
    [4, 2],
  ]);
  t.equal(buddy.allocate(1, 1, 16), 4, 'the block at 0 starts below the bound');
  t.equal(buddy.allocate(0, 0, 1), 0);
  t.equal(buddy.freePages, 16 - 12);
  buddy.free(8, 2);
  buddy.free(12, 2);
  buddy.free(3, 0);
  buddy.free(4, 1);
  buddy.free(0, 0);
  t.same(buddy.freeBlocks(), [[0, 4]]);
});

t.test('claimRange takes pages for good and refuses overlaps without changing anything', async (t) => {
  const buddy = new BuddyAllocator(4);
  t.equal(buddy.claimRange(3, 5), true, 'pages 3..7');
  t.equal(buddy.freePages, 11);
  t.same(buddy.freeBlocks(), [
    [0, 1],
    [2, 0],
    [8, 3],
  ]);
  const before = buddy.freeBlocks();
  for (const [first, pages] of [
    [7, 2],
    [0, 4],
    [2, 2],
    [3, 1],
    [15, 2],
    [-1, 1],
    [4, 0],
    [16, 1],
  ] as const) {
    t.equal(buddy.claimRange(first, pages), false, `claimRange(${first}, ${pages})`);
    t.same(buddy.freeBlocks(), before, 'free blocks unchanged');
    t.equal(buddy.freePages, 11, 'freePages unchanged');
  }
  t.equal(buddy.allocate(2), 8, 'allocated blocks are refused too');
  t.equal(buddy.claimRange(10, 4), false);
  t.equal(buddy.freePages, 7);
  const got: number[] = [];
  for (let page = buddy.allocate(0); page >= 0; page = buddy.allocate(0)) got.push(page);
  t.same(
    got.sort((a, b) => a - b),
    [0, 1, 2, 12, 13, 14, 15],
    'claimed pages are never handed out',
  );
});

t.test('pages above 2^32 work (spaceOrder 41)', async (t) => {
  const buddy = new BuddyAllocator(41);
  t.equal(buddy.allocate(32), 0);
  t.equal(buddy.allocate(32), 2 ** 32);
  t.equal(buddy.allocate(40), 2 ** 40);
  const low = 2 ** 33 + 5;
  t.equal(buddy.allocate(0, low, low + 5), low, 'bounded, unaligned, above 2^32');
  t.equal(buddy.allocate(3, low, low + 100), 2 ** 33 + 8);
  t.equal(buddy.allocate(3, low, low + 10), -1);
  t.equal(buddy.claimRange(2 ** 36 + 1, 3), true);
  t.equal(buddy.claimRange(2 ** 36 + 2, 1), false, 'overlap above 2^32');
  t.equal(buddy.freePages, 2 ** 41 - 2 ** 33 - 2 ** 40 - 1 - 8 - 3);
  buddy.free(2 ** 33 + 8, 3);
  buddy.free(low, 0);
  buddy.free(2 ** 40, 40);
  buddy.free(0, 32);
  buddy.free(2 ** 32, 32);
  t.equal(buddy.freePages, 2 ** 41 - 3);
  const blocks = buddy.freeBlocks();
  t.same(blocks[0], [0, 36], 'everything below the claimed range coalesced');
  t.same(blocks[blocks.length - 1], [2 ** 40, 40]);
  let total = 0;
  const misaligned = blocks.filter(([first, order]) => first % 2 ** order !== 0);
  for (const [, order] of blocks) total += 2 ** order;
  t.same(misaligned, [], 'every free block is aligned to its size');
  t.equal(total, 2 ** 41 - 3);
  const expected: Array<[number, number]> = [
    [0, 36],
    [2 ** 36, 0],
  ];
  for (let order = 2; order <= 35; order++) expected.push([2 ** 36 + 2 ** order, order]);
  for (let order = 37; order <= 40; order++) expected.push([2 ** order, order]);
  t.same(blocks, expected, 'exactly the buddy blocks around the three claimed pages');
});
