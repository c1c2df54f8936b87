import { ENTRIES_PER_TABLE, kEntryLeaf } from '../shared-memory/page-table-pool.js';
import type { ManagedLeaf } from './leaf-results.js';

/** Pages per entry at each level, indexed by (levels - 1 - level). */
const SPANS = [1, 512, 512 ** 2, 512 ** 3, 512 ** 4, 512 ** 5];

/**
 * Walks a managed (Translate-domain) page table for one page. Returns the leaf entry, or 0
 * when the page is not mapped; a leaf's span and table go into `leaf` (the data plane's
 * side-result convention, leaf-results.ts). Entries are read with Atomics.load so that a
 * mapping stored before the walk began is seen, and a concurrent change is seen whole or not
 * at all.
 */
export function walkManaged(entries: Uint32Array, root: number, levels: number, page: number, leaf: ManagedLeaf): number {
  let table = root;
  for (let level = 0; level < levels; level++) {
    const span = SPANS[levels - 1 - level]!;
    // `& 511` truncates toward zero and keeps the low bits, also for page numbers above 2^32.
    const entry = Atomics.load(entries, table * ENTRIES_PER_TABLE + ((page / span) & 511));
    if (entry === 0) return 0;
    if ((entry & kEntryLeaf) !== 0) {
      leaf.span = span;
      leaf.table = table;
      return entry;
    }
    table = entry >>> 4;
  }
  return 0;
}

/**
 * Whether the 16 entries of the aligned group holding `index` in leaf table `table` map 16
 * consecutive frames with the same access (the group can be cached as one run). `entry` is
 * the entry at `index`.
 */
export function isContiguousRun(entries: Uint32Array, table: number, index: number, entry: number): boolean {
  const first = table * ENTRIES_PER_TABLE + (index & ~15);
  const base = entry - ((index & 15) << 4);
  for (let j = 0; j < 16; j++) {
    if (Atomics.load(entries, first + j) !== base + (j << 4)) return false;
  }
  return true;
}
