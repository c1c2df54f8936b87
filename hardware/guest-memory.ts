import { isInstanceOf } from '../base/values.js';
import { Errors } from '../base/errors.js';
import { PAGE_SIZE, TWO_32 } from '../base/numbers.js';
import type { MDL, PhysicalMemory } from './substrate.js';
import { buildMdl } from './mdl.js';
import { PhysicalPageAllocator } from './physical-page-allocator.js';

export const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;
/** Leaf entries hold 28-bit page frame numbers: 1 TiB of guest memory at most. */
const MAX_MEMORY_BYTES = 2 ** 40;

/**
 * Guest RAM: one SharedArrayBuffer that the CPU (main thread) and every device worker see.
 * `read`/`write` are the CPU's view, with no IOMMU in the way. Out-of-range accesses throw;
 * nothing ever wraps.
 */
export class GuestMemory implements PhysicalMemory {
  readonly buffer: SharedArrayBuffer;
  readonly bytes: Uint8Array;
  readonly size: number;
  readonly pageCount: number;
  readonly #pages: PhysicalPageAllocator;
  readonly #view: DataView;

  /** Either allocate `memoryBytes` of fresh RAM or adopt an emulator's own shared buffer. */
  constructor(memory: number | SharedArrayBuffer = DEFAULT_MEMORY_BYTES) {
    if (isInstanceOf(memory, SharedArrayBuffer)) {
      checkSize('guestMemory.byteLength', memory.byteLength);
      this.buffer = memory;
    } else {
      checkSize('memoryBytes', memory);
      this.buffer = new SharedArrayBuffer(memory);
    }
    this.size = this.buffer.byteLength;
    this.pageCount = this.size / PAGE_SIZE;
    this.bytes = new Uint8Array(this.buffer);
    this.#view = new DataView(this.buffer);
    this.#pages = new PhysicalPageAllocator(this.pageCount);
  }

  get freePageCount(): number {
    return this.#pages.freePageCount;
  }

  /** `count` guest page frames (not necessarily contiguous), as page frame numbers. */
  allocatePages(count: number): number[] {
    return this.#pages.allocate(count);
  }

  /** `count` contiguous page frames aligned to `alignPages`; returns the first frame. */
  allocateContiguousPages(count: number, alignPages = 1): number {
    return this.#pages.allocateContiguous(count, alignPages);
  }

  /** Frees frames from allocatePages/allocateContiguousPages; all or nothing. */
  freePages(pfns: readonly number[]): void {
    if (!Array.isArray(pfns)) throw Errors.InvalidArgument('pfns', 'an array of page frame numbers', pfns);
    this.#pages.free(pfns);
  }

  isAllocated(pfn: number): boolean {
    return this.#pages.isAllocated(pfn);
  }

  /** The page allocator's state: allocated frames as flat [first, count, ...] runs, and its cursor. */
  allocationState(): { runs: number[]; cursor: number } {
    return this.#pages.saveState();
  }

  /** Adopts an allocation state from allocationState(); false (and no change) if it does not fit this memory. */
  loadAllocationState(state: { runs: readonly number[]; cursor: number }): boolean {
    return this.#pages.loadState(state);
  }

  /** An MDL over `pfns`: `byteCount` bytes starting `byteOffset` into the first page. */
  mdl(pfns: readonly number[], byteCount?: number, byteOffset = 0): MDL {
    if (!Array.isArray(pfns)) throw Errors.InvalidArgument('pfns', 'a non-empty array of page frame numbers', pfns);
    return buildMdl(pfns, byteCount ?? pfns.length * PAGE_SIZE, byteOffset, this.pageCount);
  }

  /** A copy of `length` bytes at `physicalAddress`. */
  read(physicalAddress: number, length: number): Uint8Array {
    this.#check(physicalAddress, length);
    return this.bytes.slice(physicalAddress, physicalAddress + length);
  }

  write(physicalAddress: number, data: ArrayLike<number>): void {
    if (data === null || typeof data !== 'object' || typeof data.length !== 'number') {
      throw Errors.InvalidArgument('bytes', 'a Uint8Array or an array of bytes', data);
    }
    this.#check(physicalAddress, data.length);
    // A plain array's elements would be coerced (256 to 0, 1.5 to 1, '7' to 7): refuse them instead.
    if (!isInstanceOf(data, Uint8Array)) {
      for (let i = 0; i < data.length; i++) {
        const byte = data[i];
        if (typeof byte !== 'number' || !Number.isInteger(byte) || byte < 0 || byte > 255)
          throw Errors.ArgumentOutOfRange(`bytes[${i}]`, 'an integer in 0..255', byte);
      }
    }
    this.bytes.set(data, physicalAddress);
  }

  fill(physicalAddress: number, length: number, value: number): void {
    this.#check(physicalAddress, length);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255)
      throw Errors.ArgumentOutOfRange('value', 'an integer in 0..255', value);
    this.bytes.fill(value, physicalAddress, physicalAddress + length);
  }

  readU32(physicalAddress: number): number {
    this.#check(physicalAddress, 4);
    return this.#view.getUint32(physicalAddress, true);
  }

  /** Writes a 32-bit value; signed int32 values (the result of `|` and `<<`) are taken as their unsigned bits. */
  writeU32(physicalAddress: number, value: number): void {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < -(2 ** 31) || value > 0xffffffff)
      throw Errors.ArgumentOutOfRange('value', 'an integer in -2^31..2^32-1', value);
    this.#check(physicalAddress, 4);
    this.#view.setUint32(physicalAddress, value >>> 0, true);
  }

  /** A little-endian 64-bit value as a number; values above 2^53 lose precision. */
  readU64(physicalAddress: number): number {
    this.#check(physicalAddress, 8);
    return this.#view.getUint32(physicalAddress, true) + this.#view.getUint32(physicalAddress + 4, true) * TWO_32;
  }

  writeU64(physicalAddress: number, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw Errors.ArgumentOutOfRange('value', 'a non-negative safe integer', value);
    this.#check(physicalAddress, 8);
    this.#view.setUint32(physicalAddress, value % TWO_32, true);
    this.#view.setUint32(physicalAddress + 4, Math.floor(value / TWO_32), true);
  }

  #check(address: number, length: number): void {
    if (!Number.isSafeInteger(address) || address < 0) throw Errors.ArgumentOutOfRange('physicalAddress', 'a non-negative safe integer', address);
    if (!Number.isSafeInteger(length) || length < 0) throw Errors.ArgumentOutOfRange('length', 'a non-negative safe integer', length);
    if (address + length > this.size) throw Errors.PhysicalRangeOutOfBounds(address, length, this.size);
  }
}

function checkSize(path: string, bytes: unknown): asserts bytes is number {
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes)) throw Errors.InvalidOption(path, 'an integer number of bytes', bytes);
  if (bytes < 2 * PAGE_SIZE || bytes % PAGE_SIZE !== 0 || bytes > MAX_MEMORY_BYTES) {
    throw Errors.OptionOutOfRange(path, `a multiple of 4096 between 8192 and 2^40`, bytes);
  }
}
