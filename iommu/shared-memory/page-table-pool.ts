import { type BufferAllocator, sharedBuffer } from '../../base/buffers.js';

/**
 * The managed (Translate-domain) page tables, in one SharedArrayBuffer that workers walk
 * without help from the main thread.
 *
 * Layout: `tableCount` tables of 512 little-endian Uint32 entries (2 KiB per table).
 *
 *   entry bit 0     VALID
 *   entry bit 1     READ      (leaf only)
 *   entry bit 2     WRITE     (leaf only)
 *   entry bit 3     LEAF      1: maps pages (4 KiB at the last level, 2 MiB / 1 GiB above it)
 *                             0: points to the next-level table
 *   entry bits 4-31 target    leaf: page frame number (28 bits: 1 TiB of guest memory)
 *                             table: index of the next-level table in this pool
 *
 * A valid leaf with neither READ nor WRITE is a mapping made with IOMMU_ACCESS_NONE: present,
 * but every access faults with PermissionFault. Table 0 is never used, so an all-zero entry
 * always means "not present". Each level resolves 9 bits of the page number; a domain has
 * `levels` levels (root = level 0), enough for its logical address width.
 *
 * Writers (the control plane, main thread only) use Atomics.store for every entry a walker
 * may reach, so a walker sees either the old or the new 32-bit entry, never a torn one.
 */
export const ENTRIES_PER_TABLE = 512;
export const TABLE_BYTES = ENTRIES_PER_TABLE * 4;
const BITS_PER_LEVEL = 9;

const kEntryValid = 0x1;
const kEntryRead = 0x2;
const kEntryWrite = 0x4;
export const kEntryLeaf = 0x8;
const kEntryTargetShift = 4;

/** A leaf entry; `access` is IOMMU_ACCESS_READ | IOMMU_ACCESS_WRITE bits (1, 2). */
export function leafEntry(pfn: number, access: number): number {
  const permissions = ((access & 1) !== 0 ? kEntryRead : 0) | ((access & 2) !== 0 ? kEntryWrite : 0);
  return ((pfn << kEntryTargetShift) | permissions | kEntryLeaf | kEntryValid) >>> 0;
}

export function tableEntry(tableIndex: number): number {
  return ((tableIndex << kEntryTargetShift) | kEntryValid) >>> 0;
}

export function entryTarget(entry: number): number {
  return entry >>> kEntryTargetShift;
}

/** Pages covered by one entry at `level` of a `levels`-level table: 1, 512, 262144, ... */
export function pagesPerEntry(levels: number, level: number): number {
  return 2 ** (BITS_PER_LEVEL * (levels - 1 - level));
}

/** Levels needed for a logical address space of `addressBits` bits (4 KiB pages). */
export function levelsForAddressBits(addressBits: number): number {
  return Math.max(1, Math.ceil((addressBits - 12) / BITS_PER_LEVEL));
}

export class PageTablePool {
  readonly buffer: ArrayBufferLike;
  readonly entries: Uint32Array;
  readonly tableCount: number;

  static byteLengthFor(tableCount: number): number {
    return tableCount * TABLE_BYTES;
  }

  /** Allocates a pool of `tableCount` tables (memory is committed lazily by the OS). */
  static create(tableCount: number, allocate: BufferAllocator = sharedBuffer): PageTablePool {
    return new PageTablePool(allocate(PageTablePool.byteLengthFor(tableCount)));
  }

  /** Wraps a pool created elsewhere (another thread's view of the same memory). */
  constructor(buffer: ArrayBufferLike) {
    this.buffer = buffer;
    this.entries = new Uint32Array(buffer);
    this.tableCount = buffer.byteLength / TABLE_BYTES;
  }
}
