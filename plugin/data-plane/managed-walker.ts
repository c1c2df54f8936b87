import { ENTRIES_PER_TABLE, kEntryLeaf } from '../shared/page-table-pool.js';

/**
 * Walks a managed (Translate-domain) page table for one page. Returns the leaf entry, or 0
 * when the page is not mapped; `walkResult[0]` receives the pages the leaf spans (1, 512 or
 * 262144). Entries are read with Atomics.load so that a mapping stored before the walk began
 * is seen, and a concurrent change is seen whole or not at all.
 */
export const walkResult = new Float64Array(1);

/** Pages per entry at each level, indexed by (levels - 1 - level). */
const SPANS = [1, 512, 512 ** 2, 512 ** 3, 512 ** 4, 512 ** 5];

export function walkManaged(entries: Uint32Array, root: number, levels: number, page: number): number {
  let table = root;
  for (let level = 0; level < levels; level++) {
    const span = SPANS[levels - 1 - level]!;
    // `& 511` truncates toward zero and keeps the low bits, also for page numbers above 2^32.
    const entry = Atomics.load(entries, table * ENTRIES_PER_TABLE + ((page / span) & 511));
    if (entry === 0) return 0;
    if ((entry & kEntryLeaf) !== 0) {
      walkResult[0] = span;
      return entry;
    }
    table = entry >>> 4;
  }
  return 0;
}
