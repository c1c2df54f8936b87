/**
 * The logical-address buddy allocator of a Translate domain (IommuDmaLogicalAllocatorBuddy).
 *
 * Works in pages. The space [0, 2^spaceOrder) pages is split into power-of-two blocks, each
 * aligned to its own size. Blocks are handed out lowest-first from a fresh space, as Windows'
 * allocator prefers low addresses; freed blocks coalesce with their buddies at once, so that
 * the whole space comes back when everything is freed.
 *
 * Free blocks of each order live in a stack (`#stacks[order]`) plus a map from start page to
 * position in that stack, so taking, finding and removing a block are O(1). A bounded
 * request (Min/Max) scans the stacks for the lowest block that can host an aligned sub-block
 * inside the bounds.
 *
 * Like Windows' allocator, it keeps a small cache of freed addresses per order: a freed
 * block waits there unmerged and the next request of that order takes it back in O(1) (a map
 * and unmap of one page then costs two array operations instead of splitting and merging
 * through every order). A request that finds no room drains the cache (merging everything)
 * and tries again, so caching never makes a request fail that would succeed without it.
 */
/** Freed blocks kept unmerged per order (see the class comment). */
const CACHE_PER_ORDER = 64;
/** 2^n: `**` with a variable exponent is a Math.pow call. */
const POW2 = Array.from({ length: 64 }, (_, n) => 2 ** n);

export class BuddyAllocator {
  readonly spaceOrder: number;
  readonly spacePages: number;
  #stacks: number[][] = [];
  #positions: Map<number, number>[] = [];
  /** Freed blocks not yet merged back, per order (at most CACHE_PER_ORDER each). */
  #cache: number[][] = [];
  #cached = 0;
  #freePages: number;

  constructor(spaceOrder: number) {
    if (!Number.isInteger(spaceOrder) || spaceOrder < 0 || spaceOrder > 41) throw new RangeError(`spaceOrder ${spaceOrder} outside 0..41`);
    this.spaceOrder = spaceOrder;
    this.spacePages = 2 ** spaceOrder;
    for (let order = 0; order <= spaceOrder; order++) {
      this.#stacks.push([]);
      this.#positions.push(new Map());
      this.#cache.push([]);
    }
    this.#push(spaceOrder, 0);
    this.#freePages = this.spacePages;
  }

  get freePages(): number {
    return this.#freePages;
  }

  /** Smallest order whose block holds `pages` pages. */
  static orderFor(pages: number): number {
    let order = 0;
    while (POW2[order]! < pages) order++;
    return order;
  }

  /**
   * A free block of `order` lying entirely inside pages [lowPage, highPage), lowest
   * candidate first; returns its first page or -1.
   */
  allocate(order: number, lowPage = 0, highPage = this.spacePages): number {
    if (order > this.spaceOrder) return -1;
    const unbounded = lowPage <= 0 && highPage >= this.spacePages;
    if (unbounded && this.#cache[order]!.length > 0) {
      this.#cached--;
      this.#freePages -= POW2[order]!;
      return this.#cache[order]!.pop()!;
    }
    const first = this.#allocate(order, lowPage, highPage, unbounded);
    if (first >= 0 || this.#cached === 0) return first;
    this.drainCache();
    return this.#allocate(order, lowPage, highPage, unbounded);
  }

  /** Merges every cached block back into the free lists. */
  drainCache(): void {
    if (this.#cached === 0) return;
    for (let order = 0; order <= this.spaceOrder; order++) {
      const cache = this.#cache[order]!;
      while (cache.length > 0) this.#release(cache.pop()!, order);
    }
    this.#cached = 0;
  }

  #allocate(order: number, lowPage: number, highPage: number, unbounded: boolean): number {
    if (unbounded) {
      for (let o = order; o <= this.spaceOrder; o++) {
        const stack = this.#stacks[o]!;
        if (stack.length > 0) return this.#carve(o, stack[stack.length - 1]!, order, stack[stack.length - 1]!);
      }
      return -1;
    }
    const size = POW2[order]!;
    let bestStart = -1;
    let bestOrder = -1;
    let bestBlock = -1;
    for (let o = order; o <= this.spaceOrder; o++) {
      const blockSize = POW2[o]!;
      for (const block of this.#stacks[o]!) {
        // The lowest order-aligned start inside both the block and the bounds.
        const start = Math.max(block, Math.ceil(lowPage / size) * size);
        if (start + size <= Math.min(block + blockSize, highPage) && (bestStart < 0 || start < bestStart)) {
          bestStart = start;
          bestOrder = o;
          bestBlock = block;
        }
      }
    }
    return bestStart < 0 ? -1 : this.#carve(bestOrder, bestBlock, order, bestStart);
  }

  /** Returns a block obtained from `allocate`. Ranges taken by `claimRange` never come back. */
  free(firstPage: number, order: number): void {
    this.#freePages += POW2[order]!;
    const cache = this.#cache[order]!;
    if (cache.length < CACHE_PER_ORDER) {
      cache.push(firstPage);
      this.#cached++;
      return;
    }
    this.#release(firstPage, order);
  }

  /** Puts a block back in the free lists, merging it with its free buddies. */
  #release(firstPage: number, order: number): void {
    let start = firstPage;
    let o = order;
    while (o < this.spaceOrder) {
      const buddy = buddyOf(start, o);
      if (!this.#positions[o]!.has(buddy)) break;
      this.#remove(o, buddy);
      start = Math.min(start, buddy);
      o++;
    }
    this.#push(o, start);
  }

  /**
   * Takes pages [firstPage, firstPage + pages) out of the free space for good (reserved
   * regions). Returns false, changing nothing, if any page of the range is already taken.
   */
  claimRange(firstPage: number, pages: number): boolean {
    this.drainCache();
    const end = firstPage + pages;
    if (firstPage < 0 || end > this.spacePages || pages <= 0) return false;
    let covered = 0;
    for (let o = 0; o <= this.spaceOrder; o++) {
      for (const block of this.#stacks[o]!) covered += Math.max(0, Math.min(end, block + POW2[o]!) - Math.max(firstPage, block));
    }
    if (covered !== pages) return false;
    for (let o = this.spaceOrder; o >= 0; o--) {
      for (const block of [...this.#stacks[o]!]) {
        const blockEnd = block + POW2[o]!;
        if (blockEnd <= firstPage || block >= end) continue;
        this.#remove(o, block);
        this.#freePages -= POW2[o]!;
        this.#releaseOutside(block, o, firstPage, end);
      }
    }
    return true;
  }

  /** Free blocks as [firstPage, order] pairs (tests and diagnostics). */
  freeBlocks(): Array<[number, number]> {
    this.drainCache();
    const blocks: Array<[number, number]> = [];
    for (let o = 0; o <= this.spaceOrder; o++) for (const block of this.#stacks[o]!) blocks.push([block, o]);
    return blocks.sort((a, b) => a[0] - b[0]);
  }

  /**
   * The allocator's exact state: per order, its free-list stack and its cache of freed
   * blocks, in their current order (which decides where the next blocks go), for snapshots.
   */
  saveState(): { stacks: number[][]; cache: number[][] } {
    return { stacks: this.#stacks.map((stack) => [...stack]), cache: this.#cache.map((cache) => [...cache]) };
  }

  /**
   * Replaces the state with one from saveState of an allocator of the same spaceOrder.
   * Returns false, changing nothing, unless every block is aligned to its order, inside the
   * space and disjoint from every other.
   */
  loadState(state: { stacks: readonly (readonly number[])[]; cache: readonly (readonly number[])[] }): boolean {
    const { stacks, cache } = state;
    if (!Array.isArray(stacks) || !Array.isArray(cache) || stacks.length !== this.spaceOrder + 1 || cache.length !== this.spaceOrder + 1) return false;
    const blocks: Array<[number, number]> = [];
    for (const lists of [stacks, cache]) {
      for (let order = 0; order <= this.spaceOrder; order++) {
        const list = lists[order];
        if (!Array.isArray(list)) return false;
        for (const start of list) {
          if (!Number.isSafeInteger(start) || start < 0 || start % POW2[order]! !== 0 || start + POW2[order]! > this.spacePages) return false;
          blocks.push([start, start + POW2[order]!]);
        }
      }
    }
    blocks.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < blocks.length; i++) if (blocks[i]![0] < blocks[i - 1]![1]) return false;
    let free = 0;
    let cached = 0;
    for (let order = 0; order <= this.spaceOrder; order++) {
      this.#stacks[order] = [];
      this.#positions[order] = new Map();
      for (const start of stacks[order]!) this.#push(order, start);
      this.#cache[order] = [...cache[order]!];
      cached += cache[order]!.length;
      free += (stacks[order]!.length + cache[order]!.length) * POW2[order]!;
    }
    this.#cached = cached;
    this.#freePages = free;
    return true;
  }

  /** Splits free block (o, block) down to an order-`order` block at `start`, freeing the rest. */
  #carve(o: number, block: number, order: number, start: number): number {
    this.#remove(o, block);
    this.#freePages -= POW2[order]!;
    while (o > order) {
      o--;
      const half = POW2[o]!;
      // Keep the half holding `start`; the other half becomes free at order o.
      if (start >= block + half) {
        this.#push(o, block);
        block += half;
      } else {
        this.#push(o, block + half);
      }
    }
    return start;
  }

  /** Re-frees the parts of block (o, block) that lie outside [low, high). */
  #releaseOutside(block: number, o: number, low: number, high: number): void {
    const size = POW2[o]!;
    if (block >= low && block + size <= high) return;
    if (block + size <= low || block >= high) {
      this.#push(o, block);
      this.#freePages += size;
      return;
    }
    this.#releaseOutside(block, o - 1, low, high);
    this.#releaseOutside(block + size / 2, o - 1, low, high);
  }

  #push(order: number, start: number): void {
    const stack = this.#stacks[order]!;
    this.#positions[order]!.set(start, stack.length);
    stack.push(start);
  }

  #remove(order: number, start: number): void {
    const stack = this.#stacks[order]!;
    const positions = this.#positions[order]!;
    const at = positions.get(start)!;
    const last = stack.pop()!;
    if (at < stack.length) {
      stack[at] = last;
      positions.set(last, at);
    }
    positions.delete(start);
  }
}

/** The buddy of the order-`order` block at `start` (start may exceed 2^32, so no `^`). */
function buddyOf(start: number, order: number): number {
  const size = POW2[order]!;
  return Math.floor(start / size) % 2 === 0 ? start + size : start - size;
}
