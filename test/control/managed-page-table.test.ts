import t from 'tap';
import { ManagedPageTable } from '../../iommu/control/managed-page-table.js';
import { PageTableAllocator } from '../../iommu/control/page-table-allocator.js';
import { ManagedLeaf } from '../../iommu/data-plane/leaf-results.js';
import { walkManaged } from '../../iommu/data-plane/managed-walker.js';
import { InvalidationLog, kInvalidateDomain } from '../../iommu/shared-memory/invalidation-log.js';
import { ENTRIES_PER_TABLE, entryTarget, leafEntry, PageTablePool } from '../../iommu/shared-memory/page-table-pool.js';
import { WorkerSlots } from '../../iommu/shared-memory/worker-slots.js';
import { rng } from '../helpers/fixture.js';

const SPAN_2M = 512;
const SPAN_1G = 512 * 512;

function setup(tables: number) {
  const pool = PageTablePool.create(tables);
  const slots = WorkerSlots.create(2);
  const log = InvalidationLog.create(16);
  const allocator = new PageTableAllocator(pool, slots, log);
  return { pool, slots, log, allocator };
}

function tableFor(allocator: PageTableAllocator, levels: number): ManagedPageTable {
  const table = ManagedPageTable.create(allocator, levels);
  if (table === null) throw new Error('setup: no root table');
  return table;
}

/** What the walker says about `page`: [pfn, access, span] or null when unmapped. */
function walk(pool: PageTablePool, table: ManagedPageTable, page: number): [number, number, number] | null {
  const leaf = new ManagedLeaf();
  const entry = walkManaged(pool.entries, table.root, table.levels, page, leaf);
  if (entry === 0) return null;
  const span = leaf.span;
  return [entryTarget(entry) + (page % span), (entry >>> 1) & 3, span];
}

/** Walks pages [first, first + count) and counts those that do not translate to `pfn + i` with `access` and `span`. */
function countWrong(pool: PageTablePool, table: ManagedPageTable, first: number, count: number, pfn: number, access: number, span: number): number {
  let wrong = 0;
  for (let i = 0; i < count; i++) {
    const got = walk(pool, table, first + i);
    if (got === null || got[0] !== pfn + i || got[1] !== access || got[2] !== span) wrong++;
  }
  return wrong;
}

t.test('4 KiB mappings: every page walks to its frame and access; missingTables is exact', async (t) => {
  const { pool, allocator } = setup(4096);
  const table = tableFor(allocator, 4);
  t.equal(allocator.tablesInUse, 1, 'the root');
  const random = rng(0x4b);
  const runs: Array<[first: number, count: number, pfn: number, access: number]> = [];
  const taken = new Set<number>();
  let slot = 0;
  while (runs.length < 40) {
    // Runs of up to 1500 pages that cross 512-page and 2^18-page boundaries now and then.
    const first = Math.floor(random() * 2 ** 20) + (random() < 0.2 ? SPAN_1G * 3 - 700 : 0);
    const count = 1 + Math.floor(random() * 1500);
    let clash = false;
    for (let p = Math.floor(first / 64); p <= Math.floor((first + count - 1) / 64); p++) if (taken.has(p)) clash = true;
    if (clash) continue;
    for (let p = Math.floor(first / 64); p <= Math.floor((first + count - 1) / 64); p++) taken.add(p);
    const pfn = 1 + slot;
    slot += count + 3;
    runs.push([first, count, pfn, runs.length % 4]);
  }
  let exact = 0;
  for (const [first, count, pfn, access] of runs) {
    const before = allocator.tablesInUse;
    const missing = table.missingTables(first, count);
    table.mapRun(first, count, pfn, access, false);
    if (allocator.tablesInUse - before === missing && table.missingTables(first, count) === 0) exact++;
  }
  t.equal(exact, runs.length, 'missingTables predicted the tables each run created, and 0 afterwards');
  t.equal(table.tableCount, allocator.tablesInUse);
  let wrong = 0;
  let leafLevels = 0;
  for (const [first, count, pfn, access] of runs) {
    wrong += countWrong(pool, table, first, count, pfn, access, 1);
    if (table.lookup(first)[1] === 3 && table.lookup(first + count - 1)[1] === 3) leafLevels++;
  }
  t.equal(wrong, 0, 'every mapped page translates to its own frame with its access');
  t.equal(leafLevels, runs.length, 'all leaves are 4 KiB leaves');
  const [first, , pfn, access] = runs[0]!;
  t.same(table.lookup(first), [leafEntry(pfn, access), 3]);
  let strays = 0;
  for (const [f, c] of runs) {
    if (!taken.has(Math.floor((f - 1) / 64)) && walk(pool, table, f - 1) !== null) strays++;
    if (!taken.has(Math.floor((f + c) / 64)) && walk(pool, table, f + c) !== null) strays++;
  }
  t.equal(strays, 0, 'neighbouring pages stay unmapped');
  t.same(table.lookup(2 ** 26), [0, -1]);
  t.equal(walkManaged(pool.entries, table.root, 4, 2 ** 26, new ManagedLeaf()), 0);
});

t.test('an aligned 512-page run becomes one 2 MiB leaf; misaligned frames do not', async (t) => {
  const { pool, allocator } = setup(64);
  const table = tableFor(allocator, 4);
  table.mapRun(SPAN_2M * 3, SPAN_2M * 2 + 7, SPAN_2M * 5, 3, true);
  t.equal(allocator.tablesInUse, 4, 'root, level 1, level 2 and one leaf table for the 7-page tail');
  t.same(table.lookup(SPAN_2M * 3), [leafEntry(SPAN_2M * 5, 3), 2]);
  t.same(table.lookup(SPAN_2M * 4 + 511), [leafEntry(SPAN_2M * 6, 3), 2]);
  t.same(table.lookup(SPAN_2M * 5 + 6), [leafEntry(SPAN_2M * 7 + 6, 3), 3]);
  t.equal(countWrong(pool, table, SPAN_2M * 3, SPAN_2M * 2, SPAN_2M * 5, 3, SPAN_2M), 0, 'both 2 MiB leaves walk with span 512');
  t.equal(countWrong(pool, table, SPAN_2M * 5, 7, SPAN_2M * 7, 3, 1), 0, 'the tail walks with span 1');
  t.equal(walk(pool, table, SPAN_2M * 5 + 7), null);

  table.mapRun(SPAN_2M * 8, SPAN_2M, SPAN_2M * 9 + 1, 1, true);
  t.equal(table.lookup(SPAN_2M * 8)[1], 3, 'a misaligned frame forces 4 KiB leaves');
  t.equal(countWrong(pool, table, SPAN_2M * 8, SPAN_2M, SPAN_2M * 9 + 1, 1, 1), 0);
  table.mapRun(SPAN_2M * 10, SPAN_2M, SPAN_2M * 12, 2, false);
  t.equal(table.lookup(SPAN_2M * 10)[1], 3, 'allowLarge false keeps 4 KiB leaves');
  t.equal(allocator.tablesInUse, 6);
});

t.test('an aligned 2^18-page run becomes one 1 GiB leaf (levels 4)', async (t) => {
  const { pool, allocator } = setup(16);
  const table = tableFor(allocator, 4);
  table.mapRun(SPAN_1G * 3, SPAN_1G, SPAN_1G, 3, true);
  t.equal(allocator.tablesInUse, 2, 'root and one level-1 table');
  t.same(table.lookup(SPAN_1G * 3 + 12345), [leafEntry(SPAN_1G, 3), 1]);
  t.equal(countWrong(pool, table, SPAN_1G * 3, SPAN_1G, SPAN_1G, 3, SPAN_1G), 0, 'every page walks with span 262144');
  t.equal(walk(pool, table, SPAN_1G * 3 - 1), null);
  t.equal(walk(pool, table, SPAN_1G * 4), null);
});

t.test('unmapping the middle of a 2 MiB leaf splits it; the other pages keep their frames', async (t) => {
  const { pool, allocator } = setup(64);
  const table = tableFor(allocator, 4);
  const base = SPAN_2M * 3;
  table.mapRun(base, SPAN_2M * 2, SPAN_2M * 5, 3, true);
  const before = allocator.tablesInUse;
  table.unmap(base + 100, 50);
  t.equal(allocator.tablesInUse - before, 1, 'one replacement table');
  let wrong = 0;
  for (let i = 0; i < SPAN_2M; i++) {
    const got = walk(pool, table, base + i);
    const expected = i >= 100 && i < 150 ? null : [SPAN_2M * 5 + i, 3, 1];
    if (JSON.stringify(got) !== JSON.stringify(expected)) wrong++;
  }
  t.equal(wrong, 0, 'pages 100..149 walk to 0, the other 462 to the same frames as before');
  t.equal(table.lookup(base)[1], 3, 'the split leaf is now 4 KiB leaves');
  t.same(table.lookup(base + SPAN_2M), [leafEntry(SPAN_2M * 6, 3), 2], 'the neighbouring 2 MiB leaf is untouched');
  table.unmap(base + SPAN_2M, SPAN_2M);
  t.equal(walk(pool, table, base + SPAN_2M + 77), null, 'a whole 2 MiB leaf unmaps without a split');
  t.equal(allocator.tablesInUse - before, 1);
});

t.test('splitTablesNeeded predicts the tables unmap allocates', async (t) => {
  const cases: Array<[what: string, first: number, count: number]> = [
    ['whole 2 MiB leaves', SPAN_1G + SPAN_2M * 10, SPAN_2M * 2],
    ['front edge only, 2 MiB leaf', SPAN_1G + SPAN_2M * 10 + 100, SPAN_2M - 100],
    ['back edge only, 2 MiB leaf', SPAN_1G + SPAN_2M * 10, 100],
    ['two edges in two 2 MiB leaves', SPAN_1G + SPAN_2M * 10 + 100, SPAN_2M],
    ['front edge only, 1 GiB leaf, 2 MiB aligned', SPAN_1G * 2 + SPAN_2M * 4, SPAN_1G - SPAN_2M * 4],
    ['front edge only, 1 GiB leaf, not 2 MiB aligned', SPAN_1G * 2 + 5, SPAN_1G - 5],
    ['two edges in one 2 MiB leaf', SPAN_1G + SPAN_2M * 10 + 100, 50],
    ['two edges in one 1 GiB leaf, different 2 MiB parts', SPAN_1G * 2 + SPAN_2M * 10 + 3, 1000],
    ['two edges in one 1 GiB leaf, same 2 MiB part', SPAN_1G * 2 + 7, 9],
  ];
  for (const [what, first, count] of cases) {
    const { pool, allocator } = setup(64);
    const table = tableFor(allocator, 4);
    table.mapRun(SPAN_1G + SPAN_2M * 8, SPAN_2M * 8, SPAN_2M * 40, 3, true);
    table.mapRun(SPAN_1G * 2, SPAN_1G, SPAN_1G, 3, true);
    const predicted = table.splitTablesNeeded(first, count);
    const before = allocator.tablesInUse;
    table.unmap(first, count);
    t.equal(predicted, allocator.tablesInUse - before, `${what}: predicted ${predicted}, allocated ${allocator.tablesInUse - before}`);
    t.equal(walk(pool, table, first), null, `${what}: first page unmapped`);
    t.equal(walk(pool, table, first + count - 1), null, `${what}: last page unmapped`);
    t.not(walk(pool, table, first - 1), null, `${what}: the page before is still mapped`);
    let moved = 0;
    for (const [runFirst, runPages, runPfn] of [
      [SPAN_1G + SPAN_2M * 8, SPAN_2M * 8, SPAN_2M * 40],
      [SPAN_1G * 2, SPAN_1G, SPAN_1G],
    ] as const) {
      for (let i = 0; i < runPages; i++) {
        const page = runFirst + i;
        const got = walk(pool, table, page);
        const inside = page >= first && page < first + count;
        if (inside ? got !== null : got === null || got[0] !== runPfn + i || got[1] !== 3) moved++;
      }
    }
    t.equal(moved, 0, `${what}: exactly the unmapped pages walk to 0, the rest keep their frames`);
    const after = first + count;
    if (after % SPAN_1G !== 0) t.not(walk(pool, table, after), null, `${what}: the page after is still mapped`);
  }
});

t.test('a split that needs one table succeeds when exactly one is available', async (t) => {
  const { allocator } = setup(5);
  const table = tableFor(allocator, 4);
  table.mapRun(0, SPAN_2M, SPAN_2M, 3, true);
  t.equal(allocator.available(), 1, 'four tables in use, one left');
  const needed = table.splitTablesNeeded(100, 50);
  t.ok(needed <= allocator.available(), `splitTablesNeeded (${needed}) must not exceed the one table the split uses`);
  table.unmap(100, 50);
  t.equal(allocator.available(), 0);
});

t.test('pages above 2^32 work with 5 levels and do not alias low pages', async (t) => {
  const { pool, allocator } = setup(64);
  const table = tableFor(allocator, 5);
  const high = 2 ** 32 + 12345;
  t.equal(table.missingTables(high, 700), 5, 'levels 1-3 once each, two leaf tables');
  table.mapRun(high, 700, 4321, 3, false);
  t.equal(allocator.tablesInUse, 6);
  t.equal(countWrong(pool, table, high, 700, 4321, 3, 1), 0);
  t.equal(walk(pool, table, 12345), null, 'page 12345 (high mod 2^32) is not mapped');
  t.equal(walk(pool, table, high + 700), null);
  const big = 2 ** 33;
  table.mapRun(big, SPAN_2M, SPAN_2M * 7, 1, true);
  t.same(table.lookup(big + 3), [leafEntry(SPAN_2M * 7, 1), 3], 'a 2 MiB leaf is at level 3 of 5');
  t.equal(countWrong(pool, table, big, SPAN_2M, SPAN_2M * 7, 1, SPAN_2M), 0);
  const huge = 2 ** 35 + SPAN_1G * 5;
  table.mapRun(huge, SPAN_1G, SPAN_1G * 2, 2, true);
  t.same(table.lookup(huge + 1), [leafEntry(SPAN_1G * 2, 2), 2], 'a 1 GiB leaf is at level 2 of 5');
  t.same(walk(pool, table, huge + SPAN_1G - 1), [SPAN_1G * 3 - 1, 2, SPAN_1G]);
  table.unmap(high + 10, 20);
  t.equal(walk(pool, table, high + 10), null);
  t.same(walk(pool, table, high + 30), [4321 + 30, 3, 1]);
});

t.test('destroy retires every table; retired tables wait for busy workers', async (t) => {
  const { pool, slots, log, allocator } = setup(8);
  const table = tableFor(allocator, 4);
  table.mapRun(0, 1, 100, 3, false);
  table.mapRun(SPAN_1G, 1, 101, 3, false);
  t.equal(table.tableCount, 6, 'root, one level-1, two level-2, two leaf tables');
  t.equal(allocator.tablesInUse, 6);
  t.equal(allocator.available(), 1);
  slots.markBusy(0, log.sequence());
  slots.markBusy(1, log.sequence());
  const retiredAt = log.sequence() + 1;
  table.destroy(retiredAt);
  t.equal(log.publish(kInvalidateDomain, 0, 0, 0), retiredAt);
  t.equal(table.tableCount, 0);
  t.equal(allocator.tablesInUse, 0, 'every table was retired');
  t.equal(allocator.available(), 1, 'nothing reclaimed while workers are behind');
  t.equal(allocator.allocate(), 7, 'a never-used table');
  t.equal(allocator.allocate(), -1, 'retired tables are not reused while slot 0 is busy with sequence 0');
  slots.markBusy(0, retiredAt);
  t.equal(allocator.allocate(), -1, 'slot 1 is still busy with sequence 0');
  slots.markIdle(1);
  t.equal(allocator.available(), 6, 'all six come back once every busy worker caught up');
  const reused = new Set<number>();
  let dirty = 0;
  for (let i = 0; i < 6; i++) {
    const got = allocator.allocate();
    reused.add(got);
    if (pool.entries.subarray(got * ENTRIES_PER_TABLE, (got + 1) * ENTRIES_PER_TABLE).some((e) => e !== 0)) dirty++;
  }
  t.same(
    [...reused].sort((a, b) => a - b),
    [1, 2, 3, 4, 5, 6],
  );
  t.equal(dirty, 0, 'reused tables come back zeroed');
  t.equal(allocator.allocate(), -1);
  t.equal(allocator.tablesInUse, 7);
});

t.test('an idle worker does not hold retired tables back', async (t) => {
  const { slots, log, allocator } = setup(3);
  const table = tableFor(allocator, 2);
  table.mapRun(0, 1, 9, 3, false);
  t.equal(allocator.available(), 0);
  slots.markBusy(0, log.sequence());
  table.destroy(log.sequence() + 1);
  log.publish(kInvalidateDomain, 0, 0, 0);
  t.equal(allocator.allocate(), -1);
  slots.markIdle(0);
  t.same([allocator.allocate(), allocator.allocate()].sort(), [1, 2]);
  t.equal(ManagedPageTable.create(allocator, 2), null, 'create answers null when the pool is empty');
});
