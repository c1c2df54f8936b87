import { Errors } from '../base/errors.js';

/**
 * Allocates guest physical page frames, as a driver would with MmAllocatePagesForMdl.
 * Main-thread state only (devices never allocate guest memory). Page frame 0 is never
 * handed out, so a zero physical address always stands out as a bug.
 *
 * Allocation is next-fit from a rotating cursor, so consecutive allocations tend to be
 * contiguous but nothing relies on it; `allocateContiguous` asks for contiguity.
 */
export class PhysicalPageAllocator {
  readonly pageCount: number;
  #used: Uint8Array;
  #free: number;
  #cursor = 1;

  constructor(pageCount: number) {
    this.pageCount = pageCount;
    this.#used = new Uint8Array(pageCount);
    this.#used[0] = 1;
    this.#free = pageCount - 1;
  }

  get freePageCount(): number {
    return this.#free;
  }

  isAllocated(pfn: number): boolean {
    return Number.isSafeInteger(pfn) && pfn > 0 && pfn < this.pageCount && this.#used[pfn] === 1;
  }

  /** `count` page frames, not necessarily contiguous. Throws RangeError when memory is short. */
  allocate(count: number): number[] {
    checkCount(count);
    if (count > this.#free) throw Errors.OutOfGuestMemory(count, this.#free);
    const pfns = new Array<number>(count);
    let pfn = this.#cursor;
    for (let i = 0; i < count; ) {
      if (pfn >= this.pageCount) pfn = 1;
      if (this.#used[pfn] === 0) {
        this.#used[pfn] = 1;
        pfns[i++] = pfn;
      }
      pfn++;
    }
    this.#cursor = pfn;
    this.#free -= count;
    return pfns;
  }

  /** `count` physically contiguous frames starting at a multiple of `alignPages`; returns the first. */
  allocateContiguous(count: number, alignPages = 1): number {
    checkCount(count);
    if (!Number.isSafeInteger(alignPages) || alignPages < 1) throw Errors.ArgumentOutOfRange('alignPages', 'a positive integer', alignPages);
    let start = alignPages;
    while (start + count <= this.pageCount) {
      let end = start;
      while (end < start + count && this.#used[end] === 0) end++;
      if (end === start + count) {
        this.#used.fill(1, start, end);
        this.#free -= count;
        return start;
      }
      start = Math.ceil((end + 1) / alignPages) * alignPages;
    }
    throw Errors.OutOfGuestMemory(count, this.#free);
  }

  /** Allocated frames as flat [first, count, ...] runs, and the next-fit cursor (snapshots). */
  saveState(): { runs: number[]; cursor: number } {
    const runs: number[] = [];
    for (let pfn = 1; pfn < this.pageCount; ) {
      if (this.#used[pfn] === 0) {
        pfn++;
        continue;
      }
      const first = pfn;
      while (pfn < this.pageCount && this.#used[pfn] === 1) pfn++;
      runs.push(first, pfn - first);
    }
    return { runs, cursor: this.#cursor };
  }

  /**
   * Replaces the allocation state with one from saveState (a snapshot being restored).
   * Returns false, changing nothing, if a run lies outside memory or covers page frame 0.
   */
  loadState(state: { runs: readonly number[]; cursor: number }): boolean {
    const { runs, cursor } = state;
    if (runs.length % 2 !== 0 || !Number.isSafeInteger(cursor) || cursor < 1 || cursor > this.pageCount) return false;
    for (let i = 0; i < runs.length; i += 2) {
      const first = runs[i]!;
      const count = runs[i + 1]!;
      if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || first < 1 || count < 1 || first + count > this.pageCount) return false;
    }
    this.#used.fill(0);
    this.#used[0] = 1;
    let used = 0;
    for (let i = 0; i < runs.length; i += 2) this.#used.fill(1, runs[i]!, runs[i]! + runs[i + 1]!);
    for (let pfn = 1; pfn < this.pageCount; pfn++) used += this.#used[pfn]!;
    this.#free = this.pageCount - 1 - used;
    this.#cursor = cursor;
    return true;
  }

  /** Frees every frame or none: a double free or a foreign PFN throws and changes nothing. */
  free(pfns: readonly number[]): void {
    const seen = new Set<number>();
    for (const pfn of pfns) {
      if (!this.isAllocated(pfn) || seen.has(pfn)) throw Errors.PageNotAllocated(Number(pfn));
      seen.add(pfn);
    }
    for (const pfn of pfns) this.#used[pfn] = 0;
    this.#free += pfns.length;
  }
}

function checkCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 1) throw Errors.ArgumentOutOfRange('count', 'a positive integer', count);
}
