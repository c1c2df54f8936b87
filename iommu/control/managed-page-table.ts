import { ENTRIES_PER_TABLE, entryTarget, kEntryLeaf, leafEntry, pagesPerEntry, tableEntry } from '../shared-memory/page-table-pool.js';
import type { PageTableAllocator } from './page-table-allocator.js';

/**
 * The writer side of one Translate domain's page table (main thread only); the format is
 * described in shared/page-table-pool.ts and walked by data-plane/managed-walker.ts.
 *
 * Every structural change is made so that a concurrent walker sees the old or the new
 * translation, never a torn one: a new table is filled before the entry linking it is
 * stored; a large leaf is split by building the replacement table first and swapping it in
 * with one Atomics.store; unmapping clears leaves with Atomics.store before the caller
 * publishes the invalidation.
 *
 * Tables are only given back when the domain is destroyed, so a reserved token's tables can
 * never disappear under it and mapping inside a token never allocates.
 */
export class ManagedPageTable {
  readonly levels: number;
  readonly root: number;
  readonly #entries: Uint32Array;
  readonly #allocator: PageTableAllocator;
  /** #spans[level]: pages mapped by one entry at `level`; #inverse[level] = 1 / #spans[level] (exact: powers of two). */
  readonly #spans: number[];
  readonly #inverse: number[];
  #tables = 1;

  /** A table with an empty root, or null when the pool has no table left. */
  static create(allocator: PageTableAllocator, levels: number): ManagedPageTable | null {
    const root = allocator.allocate();
    return root < 0 ? null : new ManagedPageTable(allocator, levels, root);
  }

  private constructor(allocator: PageTableAllocator, levels: number, root: number) {
    this.#allocator = allocator;
    this.#entries = allocator.pool.entries;
    this.levels = levels;
    this.root = root;
    this.#spans = Array.from({ length: levels }, (_, level) => pagesPerEntry(levels, level));
    this.#inverse = this.#spans.map((span) => 1 / span);
  }

  /** Tables below the root that 4 KiB leaves for pages [first, first + count) span: an upper bound of what mapping them creates. */
  static tablesSpanned(levels: number, first: number, count: number): number {
    let tables = 0;
    for (let depth = 1; depth < levels; depth++) {
      const regionPages = pagesPerEntry(levels, depth - 1);
      tables += Math.floor((first + count - 1) / regionPages) - Math.floor(first / regionPages) + 1;
    }
    return tables;
  }

  /** Tables this domain's tree holds (its share of the pool). */
  get tableCount(): number {
    return this.#tables;
  }

  /** Tables a 4 KiB-leaf mapping of pages [first, first + count) would have to create. */
  missingTables(first: number, count: number): number {
    const leafTablePages = this.#spans[this.levels - 2] ?? Infinity;
    if (Math.floor(first / leafTablePages) === Math.floor((first + count - 1) / leafTablePages)) {
      // One leaf table holds the whole range: count the tables missing on its one path.
      return this.levels - 1 - this.#depthReached(first);
    }
    let missing = 0;
    for (let depth = 1; depth < this.levels; depth++) {
      const regionPages = this.#spans[depth - 1]!;
      const lastRegion = Math.floor((first + count - 1) / regionPages);
      for (let region = Math.floor(first / regionPages); region <= lastRegion; region++) {
        if (this.#tableAt(region * regionPages, depth) < 0) missing++;
      }
    }
    return missing;
  }

  /**
   * Maps pages [first, first + count) to the physically contiguous frames from `pfn` on.
   * With `allowLarge`, aligned stretches become 2 MiB / 1 GiB leaves where the slot is free.
   * The caller has checked that the pages are unmapped and that `missingTables` are available.
   */
  mapRun(first: number, count: number, pfn: number, access: number, allowLarge: boolean): void {
    const leafLevel = this.levels - 1;
    let page = first;
    let frame = pfn;
    let left = count;
    while (left > 0) {
      const level = allowLarge ? this.#largestLeafLevel(page, frame, left) : leafLevel;
      const table = this.#ensureTable(page, level);
      if (level !== leafLevel) {
        Atomics.store(this.#entries, table * ENTRIES_PER_TABLE + this.#index(page, level), leafEntry(frame, access));
        page += this.#spans[level]!;
        frame += this.#spans[level]!;
        left -= this.#spans[level]!;
        continue;
      }
      // A run of 4 KiB leaves up to the end of this leaf table.
      const index = this.#index(page, leafLevel);
      const run = Math.min(left, ENTRIES_PER_TABLE - index);
      const base = table * ENTRIES_PER_TABLE + index;
      for (let i = 0; i < run; i++) Atomics.store(this.#entries, base + i, leafEntry(frame + i, access));
      page += run;
      frame += run;
      left -= run;
    }
  }

  /** Creates every leaf table of pages [first, first + count) (tokens). Caller checked `missingTables`. */
  preallocate(first: number, count: number): void {
    const leafLevel = this.levels - 1;
    for (let page = first; page < first + count; page = (Math.floor(page / ENTRIES_PER_TABLE) + 1) * ENTRIES_PER_TABLE) {
      this.#ensureTable(page, leafLevel);
    }
  }

  /** Tables that `unmap(first, count)` needs for splitting large leaves at the range's edges. */
  splitTablesNeeded(first: number, count: number): number {
    // Only a large leaf at an edge needs splitting; most unmaps meet 4 KiB leaves only.
    const leafLevel = this.levels - 1;
    if (this.#levelOf(first) !== leafLevel || this.#levelOf(first + count - 1) !== leafLevel) return this.#splitTables(first, count);
    return 0;
  }

  #splitTables(first: number, count: number): number {
    // Each split is identified by the level and first page of the leaf it replaces; both
    // edges may fall in the same large leaf, which is then split once.
    const splits = new Set<string>();
    this.#splitsAt(first, first, splits);
    this.#splitsAt(first + count, first + count - 1, splits);
    return splits.size;
  }

  /** Clears pages [first, first + count), splitting large leaves that straddle the edges. */
  unmap(first: number, count: number): void {
    this.#unmapIn(this.root, 0, 0, first, first + count);
  }

  /** The leaf entry mapping `page` and its level, or [0, -1]: for tests and diagnostics. */
  lookup(page: number): [entry: number, level: number] {
    let table = this.root;
    for (let level = 0; level < this.levels; level++) {
      const entry = this.#entries[table * ENTRIES_PER_TABLE + this.#index(page, level)]!;
      if (entry === 0) return [0, -1];
      if ((entry & kEntryLeaf) !== 0) return [entry, level];
      table = entryTarget(entry);
    }
    return [0, -1];
  }

  /**
   * Calls `visit(page, pages, pfn, access)` for each run of pages in [first, first + count)
   * whose frames are consecutive with one access, in address order; unmapped pages are
   * skipped. One lookup per leaf, so a 1 GiB leaf costs one step (snapshots, diagnostics).
   */
  mappedRuns(first: number, count: number, visit: (page: number, pages: number, pfn: number, access: number) => void): void {
    const end = first + count;
    let runPage = -1;
    let runPages = 0;
    let runPfn = 0;
    let runAccess = 0;
    for (let page = first; page < end; ) {
      const [entry, level] = this.lookup(page);
      const span = level < 0 ? 1 : this.#spans[level]!;
      const pages = Math.min(span - (page % span), end - page);
      if (entry !== 0) {
        const pfn = entryTarget(entry) + (page % span);
        const access = (entry >>> 1) & 3;
        if (runPage >= 0 && runPage + runPages === page && runPfn + runPages === pfn && runAccess === access) {
          runPages += pages;
        } else {
          if (runPage >= 0) visit(runPage, runPages, runPfn, runAccess);
          runPage = page;
          runPages = pages;
          runPfn = pfn;
          runAccess = access;
        }
      }
      page += pages;
    }
    if (runPage >= 0) visit(runPage, runPages, runPfn, runAccess);
  }

  /** How many tables exist on `page`'s path below the root (0 .. levels - 1), stopping at a leaf. */
  #depthReached(page: number): number {
    let table = this.root;
    for (let level = 0; level < this.levels - 1; level++) {
      const entry = this.#entries[table * ENTRIES_PER_TABLE + this.#index(page, level)]!;
      if (entry === 0 || (entry & kEntryLeaf) !== 0) return level;
      table = entryTarget(entry);
    }
    return this.levels - 1;
  }

  /** The level of the leaf mapping `page`, or -1 (lookup without the allocation). */
  #levelOf(page: number): number {
    let table = this.root;
    for (let level = 0; level < this.levels; level++) {
      const entry = this.#entries[table * ENTRIES_PER_TABLE + this.#index(page, level)]!;
      if (entry === 0) return -1;
      if ((entry & kEntryLeaf) !== 0) return level;
      table = entryTarget(entry);
    }
    return -1;
  }

  /** Retires every table of the tree; `retiredAt` as for PageTableAllocator.retire. */
  destroy(retiredAt: number): void {
    const pending: Array<[table: number, level: number]> = [[this.root, 0]];
    while (pending.length > 0) {
      const [table, level] = pending.pop()!;
      if (level < this.levels - 1) {
        for (let i = 0; i < ENTRIES_PER_TABLE; i++) {
          const entry = this.#entries[table * ENTRIES_PER_TABLE + i]!;
          if (entry !== 0 && (entry & kEntryLeaf) === 0) pending.push([entryTarget(entry), level + 1]);
        }
      }
      this.#allocator.retire(table, retiredAt);
    }
    this.#tables = 0;
  }

  #index(page: number, level: number): number {
    // `& 511` truncates toward zero and keeps the low bits, also above 2^32.
    return (page * this.#inverse[level]!) & (ENTRIES_PER_TABLE - 1);
  }

  /** The largest leaf level usable at `page` for `left` contiguous frames from `frame`. */
  #largestLeafLevel(page: number, frame: number, left: number): number {
    if (left < ENTRIES_PER_TABLE) return this.levels - 1;
    for (let level = Math.max(1, this.levels - 3); level < this.levels - 1; level++) {
      const span = this.#spans[level]!;
      if (page % span === 0 && frame % span === 0 && left >= span && this.#slotEmpty(page, level)) return level;
    }
    return this.levels - 1;
  }

  #slotEmpty(page: number, level: number): boolean {
    const table = this.#tableAt(page, level);
    return table < 0 || this.#entries[table * ENTRIES_PER_TABLE + this.#index(page, level)] === 0;
  }

  /** The table at depth `depth` on `page`'s path, or -1 if the path stops before it. */
  #tableAt(page: number, depth: number): number {
    let table = this.root;
    for (let level = 0; level < depth; level++) {
      const entry = this.#entries[table * ENTRIES_PER_TABLE + this.#index(page, level)]!;
      if (entry === 0 || (entry & kEntryLeaf) !== 0) return -1;
      table = entryTarget(entry);
    }
    return table;
  }

  /** Like #tableAt, creating missing tables on the way (already budgeted by the caller). */
  #ensureTable(page: number, depth: number): number {
    let table = this.root;
    for (let level = 0; level < depth; level++) {
      const slot = table * ENTRIES_PER_TABLE + this.#index(page, level);
      const entry = this.#entries[slot]!;
      if ((entry & kEntryLeaf) !== 0) throw new Error(`internal: page 0x${page.toString(16)} is already mapped by a large leaf`);
      if (entry !== 0) {
        table = entryTarget(entry);
        continue;
      }
      const created = this.#allocate();
      Atomics.store(this.#entries, slot, tableEntry(created));
      table = created;
    }
    return table;
  }

  #allocate(): number {
    const table = this.#allocator.allocate();
    if (table < 0) throw new Error('internal: page-table pool exhausted after the caller budgeted for it');
    this.#tables++;
    return table;
  }

  /** Adds to `splits` the leaves split to cut at page `boundary`, starting from the leaf holding `page`. */
  #splitsAt(boundary: number, page: number, splits: Set<string>): void {
    const [entry, level] = this.lookup(page);
    if (entry === 0) return;
    for (let l = level; l < this.levels - 1 && boundary % this.#spans[l]! !== 0; l++) {
      splits.add(`${l}:${Math.floor(page / this.#spans[l]!)}`);
    }
  }

  #unmapIn(table: number, level: number, tableFirst: number, first: number, end: number): void {
    const span = this.#spans[level]!;
    const inverse = this.#inverse[level]!;
    const from = Math.floor(((first > tableFirst ? first : tableFirst) - tableFirst) * inverse);
    const tableEnd = tableFirst + ENTRIES_PER_TABLE * span;
    const to = Math.floor(((end < tableEnd ? end : tableEnd) - 1 - tableFirst) * inverse);
    for (let i = from; i <= to; i++) {
      const slot = table * ENTRIES_PER_TABLE + i;
      const entry = this.#entries[slot]!;
      if (entry === 0) continue;
      const entryFirst = tableFirst + i * span;
      if ((entry & kEntryLeaf) === 0) {
        this.#unmapIn(entryTarget(entry), level + 1, entryFirst, first, end);
      } else if (first <= entryFirst && end >= entryFirst + span) {
        Atomics.store(this.#entries, slot, 0);
      } else {
        // A large leaf straddling an edge: replace it by an equivalent table, then cut.
        const child = this.#allocate();
        const childSpan = span / ENTRIES_PER_TABLE;
        const access = (entry >>> 1) & 3;
        const frame = entryTarget(entry);
        for (let j = 0; j < ENTRIES_PER_TABLE; j++) {
          this.#entries[child * ENTRIES_PER_TABLE + j] = leafEntry(frame + j * childSpan, access);
        }
        Atomics.store(this.#entries, slot, tableEntry(child));
        this.#unmapIn(child, level + 1, entryFirst, first, end);
      }
    }
  }
}
