import { type BufferAllocator, isShared, sharedBuffer } from '../base/buffers.js';
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
 * Guest RAM: one buffer that the CPU and every device see, a SharedArrayBuffer when device
 * workers reach it. `read`/`write` are the CPU's view, with no IOMMU in the way.
 * Out-of-range accesses throw; nothing ever wraps.
 */
export class GuestMemory implements PhysicalMemory {
  readonly size: number;
  readonly pageCount: number;
  #bytes: Uint8Array;
  #view: DataView;
  readonly #pages: PhysicalPageAllocator;

  /**
   * Allocates `memory` bytes of fresh RAM with `allocate`, or adopts an emulator's own RAM:
   * a whole SharedArrayBuffer, or a byte view of any buffer (v86's RAM is a slice of its
   * WebAssembly memory) whose offset is a multiple of 8.
   */
  constructor(memory: number | SharedArrayBuffer | Uint8Array = DEFAULT_MEMORY_BYTES, allocate: BufferAllocator = sharedBuffer) {
    let bytes: Uint8Array;
    if (isInstanceOf<Uint8Array>(memory, Uint8Array)) {
      checkSize('guestMemory.byteLength', memory.byteLength);
      if (memory.byteOffset % 8 !== 0) throw Errors.InvalidOption('guestMemory.byteOffset', 'a multiple of 8', memory.byteOffset);
      bytes = memory;
    } else if (typeof memory === 'object' && memory !== null && isShared(memory)) {
      checkSize('guestMemory.byteLength', memory.byteLength);
      bytes = new Uint8Array(memory);
    } else {
      checkSize('memoryBytes', memory);
      bytes = new Uint8Array(allocate(memory));
    }
    this.size = bytes.byteLength;
    this.pageCount = this.size / PAGE_SIZE;
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#pages = new PhysicalPageAllocator(this.pageCount);
  }

  /** The RAM as bytes (a view of `buffer`, which it need not fill). */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** The buffer that holds the RAM. */
  get buffer(): ArrayBufferLike {
    return this.#bytes.buffer;
  }

  /**
   * Sees the same RAM through `bytes` from now on: an emulator whose WebAssembly memory grew
   * has a new buffer with the same contents (the old one is detached). Same size only.
   */
  rebind(bytes: Uint8Array): void {
    if (!(bytes instanceof Uint8Array) || bytes.byteLength !== this.size || bytes.byteOffset % 8 !== 0) {
      throw Errors.InvalidArgument('bytes', `a Uint8Array of ${this.size} bytes at an offset that is a multiple of 8`, bytes);
    }
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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
    return this.#bytes.slice(physicalAddress, physicalAddress + length);
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
    this.#bytes.set(data, physicalAddress);
  }

  fill(physicalAddress: number, length: number, value: number): void {
    this.#check(physicalAddress, length);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255)
      throw Errors.ArgumentOutOfRange('value', 'an integer in 0..255', value);
    this.#bytes.fill(value, physicalAddress, physicalAddress + length);
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
