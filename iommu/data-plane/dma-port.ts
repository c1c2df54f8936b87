import { PAGE_SIZE, TWO_32 } from '../../base/numbers.js';
import { kSequenceField } from '../shared-memory/invalidation-log.js';
import { DMA_OK, type TranslationEngine } from './translation-engine.js';

export { DMA_BLOCKED, DMA_OK } from './translation-engine.js';

const READ = 1;
const WRITE = 2;
/** Addresses the micro-TLB caches stay below this (small integers; see the fields). */
const SMALL = 2 ** 30;
/** An empty micro-TLB entry: no access is ever within a page of it. */
const EMPTY_ENTRY = -SMALL;

/**
 * The device side of DMA: how a device model running in a worker reads and writes guest
 * memory by I/O virtual address, through the IOMMU. One port per device per worker.
 *
 * Every method returns (or stores in `lastResult`) DMA_OK, DMA_BLOCKED or the
 * FAULT_INFORMATION_ARM64_TYPE of the fault; an access is translated whole before any byte
 * moves, so a faulting access changes nothing. Nothing here throws for a bad address or
 * allocates on the way (a copy into a buffer outside guest memory larger than 64 bytes makes
 * one typed-array view per physical fragment: V8 has no other way to copy between two
 * buffers).
 *
 * Accesses that stay inside one page use a two-entry micro-TLB (a device's own translation
 * cache, like an ATS device TLB): the last two pages translated, valid while the
 * invalidation sequence is unchanged. That check is a plain Int32 load: Atomics.load costs
 * ~6 ns in Node 20 (a builtin call), five times an 8-byte read; an aligned Int32 load never
 * tears, and V8 does not cache typed-array loads across iterations.
 * test/data-plane/micro-tlb.test.ts proves that a spinning device sees an unmap made by
 * another thread.
 */
export class DmaPort {
  readonly device: number;
  /** @internal This thread's translation engine. */
  readonly engine: TranslationEngine;
  /** Result of the last operation (DMA_OK, DMA_BLOCKED or a fault type). */
  lastResult = DMA_OK;
  #ram: Uint8Array;
  #view: DataView;
  readonly #sequence: Int32Array;
  /** The port's scratch word: a scalar access that straddles two pages is assembled here. */
  readonly #scratchBytes = new Uint8Array(8);
  readonly #scratch = new DataView(this.#scratchBytes.buffer);
  /** Second fragment list, for copies that translate two ranges. */
  #sourceFragments = new Float64Array(64);
  /**
   * Micro-TLB: two entries of (page address, physical page address, access), one sequence.
   * Every field holds a small integer (V8 keeps such fields unboxed and its arithmetic on
   * them in integer registers, twice as fast as on doubles), which is why only pages whose
   * logical and physical addresses lie below 2^30 are cached here, and why an empty entry is
   * the sentinel -2^30 rather than NaN.
   */
  #microSequence = 0;
  #pageA = EMPTY_ENTRY;
  #physicalA = 0;
  #accessA = 0;
  #pageB = EMPTY_ENTRY;
  #physicalB = 0;
  #accessB = 0;
  /** Which entry the next fill replaces (the one not filled last). */
  #replaceB = false;

  /** @internal Ports are made by the platform (mainThreadPort) and the worker runtime (portFor). */
  constructor(engine: TranslationEngine, ram: Uint8Array, sequenceHeader: Int32Array, device: number) {
    this.engine = engine;
    this.device = device;
    this.#ram = ram;
    this.#view = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
    this.#sequence = sequenceHeader;
  }

  /** Moves guest RAM through `ram` from now on: the same memory seen through a new view (see TranslationEngine.useGuestMemory). */
  useGuestMemory(ram: Uint8Array): void {
    this.#ram = ram;
    this.#view = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
  }

  /** Reads `length` bytes at `iova` into `destination[offset..]`. */
  read(iova: number, length: number, destination: Uint8Array, offset = 0): number {
    const physical = this.#micro(iova, length, READ);
    if (physical >= 0) {
      copyBytes(this.#ram, physical, destination, offset, length);
      return (this.lastResult = DMA_OK);
    }
    const result = this.#translate(iova, length, false);
    if (result !== DMA_OK) return result;
    const fragments = this.engine.fragments;
    let at = offset;
    for (let i = 0; i < this.engine.fragmentCount; i++) {
      const bytes = fragments[2 * i + 1]!;
      copyBytes(this.#ram, fragments[2 * i]!, destination, at, bytes);
      at += bytes;
    }
    return result;
  }

  /** Writes `length` bytes from `source[offset..]` at `iova`. */
  write(iova: number, source: Uint8Array, offset = 0, length = source.length - offset): number {
    const physical = this.#micro(iova, length, WRITE);
    if (physical >= 0) {
      copyBytes(source, offset, this.#ram, physical, length);
      return (this.lastResult = DMA_OK);
    }
    const result = this.#translate(iova, length, true);
    if (result !== DMA_OK) return result;
    const fragments = this.engine.fragments;
    let at = offset;
    for (let i = 0; i < this.engine.fragmentCount; i++) {
      const bytes = fragments[2 * i + 1]!;
      copyBytes(source, at, this.#ram, fragments[2 * i]!, bytes);
      at += bytes;
    }
    return result;
  }

  /** Fills `length` bytes at `iova` with `value`. */
  fill(iova: number, length: number, value: number): number {
    const physical = this.#micro(iova, length, WRITE);
    if (physical >= 0) {
      this.#ram.fill(value, physical, physical + length);
      return (this.lastResult = DMA_OK);
    }
    const result = this.#translate(iova, length, true);
    if (result !== DMA_OK) return result;
    const fragments = this.engine.fragments;
    for (let i = 0; i < this.engine.fragmentCount; i++) {
      const physicalAt = fragments[2 * i]!;
      this.#ram.fill(value, physicalAt, physicalAt + fragments[2 * i + 1]!);
    }
    return result;
  }

  /**
   * Device-internal copy from `sourceIova` to `destinationIova` (a copy engine's transfer).
   * Both ranges are translated before any byte moves.
   */
  copy(sourceIova: number, destinationIova: number, length: number): number {
    const from = this.#micro(sourceIova, length, READ);
    if (from >= 0) {
      const to = this.#micro(destinationIova, length, WRITE);
      if (to >= 0) {
        this.#ram.copyWithin(to, from, from + length);
        return (this.lastResult = DMA_OK);
      }
    }
    let result = this.#translate(sourceIova, length, false);
    if (result !== DMA_OK) return result;
    const sourceCount = this.engine.fragmentCount;
    if (this.#sourceFragments.length < 2 * sourceCount) this.#sourceFragments = new Float64Array(2 * sourceCount);
    const source = this.#sourceFragments;
    const translated = this.engine.fragments;
    for (let i = 0; i < 2 * sourceCount; i++) source[i] = translated[i]!;
    result = this.#translate(destinationIova, length, true);
    if (result !== DMA_OK) return result;
    const destination = this.engine.fragments;
    const destinationCount = this.engine.fragmentCount;
    let s = 0;
    let sOffset = 0;
    let d = 0;
    let dOffset = 0;
    while (s < sourceCount && d < destinationCount) {
      const sLeft = source[2 * s + 1]! - sOffset;
      const dLeft = destination[2 * d + 1]! - dOffset;
      const bytes = sLeft < dLeft ? sLeft : dLeft;
      const from = source[2 * s]! + sOffset;
      this.#ram.copyWithin(destination[2 * d]! + dOffset, from, from + bytes);
      sOffset += bytes;
      dOffset += bytes;
      if (sOffset === source[2 * s + 1]) {
        s++;
        sOffset = 0;
      }
      if (dOffset === destination[2 * d + 1]) {
        d++;
        dOffset = 0;
      }
    }
    return result;
  }

  /*
   * The scalar accesses below are a device's hottest path. They check the first micro-TLB
   * entry inline and leave everything else to other methods, so that they stay small enough
   * for V8 to inline into a device's loop; and they spell their constants out (0 is
   * kSequenceField, 4092 and 4088 the last offsets of a page for 4 and 8 bytes, 1 READ,
   * 2 WRITE, -1 DMA_OK, 4294967296 TWO_32): bundled module constants, PAGE_SIZE and TWO_32
   * from base/numbers.ts included, become mutable variables that V8 reloads and re-checks on
   * every call. The paths past the first entry use the named constants.
   */

  /** A little-endian 32-bit read; -1 on failure (see lastResult). */
  readU32(iova: number): number {
    const offset = iova - this.#pageA;
    if (this.#sequence[0] === this.#microSequence && offset >= 0 && offset <= 4092 && (this.#accessA & 1) !== 0) {
      this.lastResult = -1;
      return this.#view.getUint32(this.#physicalA + offset, true);
    }
    return this.#readSlow(iova, 4);
  }

  /** A little-endian 64-bit read as a number (exact below 2^53); -1 on failure. */
  readU64(iova: number): number {
    const offset = iova - this.#pageA;
    if (this.#sequence[0] === this.#microSequence && offset >= 0 && offset <= 4088 && (this.#accessA & 1) !== 0) {
      this.lastResult = -1;
      const at = this.#physicalA + offset;
      return this.#view.getUint32(at, true) + this.#view.getUint32(at + 4, true) * 4294967296;
    }
    return this.#readSlow(iova, 8);
  }

  /**
   * Scalar reads that missed the first micro-TLB entry: the second entry, else a translation
   * (a value that straddles two pages is gathered into the scratch word first).
   */
  #readSlow(iova: number, size: number): number {
    let at = this.#micro(iova, size, READ);
    let view = this.#view;
    if (at < 0) {
      if (this.#translate(iova, size, false) !== DMA_OK) return -1;
      if (this.engine.fragmentCount === 1) {
        at = this.engine.fragments[0]!;
      } else {
        this.#gather(false);
        at = 0;
        view = this.#scratch;
      }
    }
    this.lastResult = DMA_OK;
    return size === 4 ? view.getUint32(at, true) : view.getUint32(at, true) + view.getUint32(at + 4, true) * TWO_32;
  }

  writeU32(iova: number, value: number): number {
    const offset = iova - this.#pageA;
    if (this.#sequence[0] === this.#microSequence && offset >= 0 && offset <= 4092 && (this.#accessA & 2) !== 0) {
      this.#view.setUint32(this.#physicalA + offset, value, true);
      return (this.lastResult = -1);
    }
    const at = this.#micro(iova, 4, WRITE);
    if (at >= 0) {
      this.#view.setUint32(at, value, true);
      return (this.lastResult = DMA_OK);
    }
    this.#scratch.setUint32(0, value, true);
    return this.#writeSmall(iova, 4);
  }

  /** A little-endian 64-bit write of a non-negative safe integer. */
  writeU64(iova: number, value: number): number {
    const at = this.#micro(iova, 8, WRITE);
    if (at >= 0) {
      this.#view.setUint32(at, value % TWO_32, true);
      this.#view.setUint32(at + 4, Math.floor(value / TWO_32), true);
      return (this.lastResult = DMA_OK);
    }
    this.#scratch.setUint32(0, value % TWO_32, true);
    this.#scratch.setUint32(4, Math.floor(value / TWO_32), true);
    return this.#writeSmall(iova, 8);
  }

  /** Forgets the micro-TLB (the invalidation sequence does this by itself; for tests). */
  forgetMicroTlb(): void {
    this.#pageA = this.#pageB = EMPTY_ENTRY;
  }

  /**
   * The physical address of `iova` if [iova, iova + size) lies in a page the micro-TLB holds
   * with `need` access, under an unchanged invalidation sequence; else -1.
   */
  #micro(iova: number, size: number, need: number): number {
    if (this.#sequence[kSequenceField] !== this.#microSequence) return -1;
    let offset = iova - this.#pageA;
    if (offset >= 0 && offset + size <= PAGE_SIZE && (this.#accessA & need) !== 0) return this.#physicalA + offset;
    offset = iova - this.#pageB;
    if (offset >= 0 && offset + size <= PAGE_SIZE && (this.#accessB & need) !== 0) return this.#physicalB + offset;
    return -1;
  }

  /** A full translation; remembers a one-page result in the micro-TLB. */
  #translate(iova: number, length: number, write: boolean): number {
    const result = this.engine.translate(this.device, iova, length, write);
    this.lastResult = result;
    if (result !== DMA_OK) return result;
    const inPage = iova % PAGE_SIZE;
    // Two physically adjacent pages coalesce into one fragment, but their access may differ.
    if (inPage + length <= PAGE_SIZE && iova < SMALL && this.engine.fragments[0]! < SMALL) {
      // `| 0`: a number read from a Float64Array would otherwise be stored boxed (see the fields).
      const sequence = this.engine.sequence | 0;
      if (sequence !== this.#microSequence) {
        this.#microSequence = sequence;
        this.#pageA = this.#pageB = EMPTY_ENTRY;
      }
      const page = (iova - inPage) | 0;
      const physical = (this.engine.fragments[0]! - inPage) | 0;
      const access = this.engine.lastAccess | 0;
      if (this.#replaceB) {
        this.#pageB = page;
        this.#physicalB = physical;
        this.#accessB = access;
      } else {
        this.#pageA = page;
        this.#physicalA = physical;
        this.#accessA = access;
      }
      this.#replaceB = !this.#replaceB;
    }
    return result;
  }

  /** Slow path of a scalar write whose value is in the scratch word. */
  #writeSmall(iova: number, size: number): number {
    const result = this.#translate(iova, size, true);
    if (result === DMA_OK) this.#gather(true);
    return result;
  }

  /** Moves an access between guest memory and the scratch word, fragment by fragment. */
  #gather(write: boolean): void {
    const fragments = this.engine.fragments;
    const scratch = this.#scratchBytes;
    let at = 0;
    for (let i = 0; i < this.engine.fragmentCount; i++) {
      const physical = fragments[2 * i]!;
      const bytes = fragments[2 * i + 1]!;
      for (let b = 0; b < bytes; b++, at++) {
        if (write) this.#ram[physical + b] = scratch[at]!;
        else scratch[at] = this.#ram[physical + b]!;
      }
    }
  }
}

/** Copies between two byte arrays without a view when they share memory. */
function copyBytes(source: Uint8Array, sourceOffset: number, destination: Uint8Array, destinationOffset: number, length: number): void {
  if (source === destination) {
    destination.copyWithin(destinationOffset, sourceOffset, sourceOffset + length);
  } else if (length <= 64) {
    for (let i = 0; i < length; i++) destination[destinationOffset + i] = source[sourceOffset + i]!;
  } else {
    destination.set(source.subarray(sourceOffset, sourceOffset + length), destinationOffset);
  }
}
