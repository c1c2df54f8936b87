import { DMA_OK, type TranslationEngine } from '../plugin/data-plane/translation-engine.js';
import { kSequenceField } from '../plugin/shared/invalidation-log.js';

export { DMA_BLOCKED, DMA_OK } from '../plugin/data-plane/translation-engine.js';

const PAGE = 4096;
const TWO_32 = 2 ** 32;

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
 * Small accesses (readU32/readU64/writeU32/writeU64) keep the last page's translation in a
 * one-entry micro-TLB, valid while the invalidation sequence is unchanged. That check is a
 * plain Int32 load: Atomics.load costs ~6 ns in Node 20 (a builtin call), five times an
 * 8-byte read; an aligned Int32 load never tears and V8 does not cache typed-array loads
 * across iterations. test/data-plane/micro-tlb.test.ts proves that a spinning device sees an
 * unmap made by another thread.
 */
export class DmaPort {
  readonly device: number;
  readonly engine: TranslationEngine;
  /** Result of the last operation (DMA_OK, DMA_BLOCKED or a fault type). */
  lastResult = DMA_OK;
  readonly #ram: Uint8Array;
  readonly #view: DataView;
  readonly #sequence: Int32Array;
  /** Second fragment list, for copies that translate two ranges. */
  #sourceFragments = new Float64Array(64);
  #microSequence = NaN;
  #microPage = NaN;
  #microPhysical = 0;
  #microAccess = 0;

  constructor(engine: TranslationEngine, ram: Uint8Array, sequenceHeader: Int32Array, device: number) {
    this.engine = engine;
    this.device = device;
    this.#ram = ram;
    this.#view = new DataView(ram.buffer, ram.byteOffset, ram.byteLength);
    this.#sequence = sequenceHeader;
  }

  /** Reads `length` bytes at `iova` into `destination[offset..]`. */
  read(iova: number, length: number, destination: Uint8Array, offset = 0): number {
    const result = this.engine.translate(this.device, iova, length, false);
    this.lastResult = result;
    if (result !== DMA_OK) return result;
    const fragments = this.engine.fragments;
    let at = offset;
    for (let i = 0; i < this.engine.fragmentCount; i++) {
      const physical = fragments[2 * i]!;
      const bytes = fragments[2 * i + 1]!;
      copyBytes(this.#ram, physical, destination, at, bytes);
      at += bytes;
    }
    return result;
  }

  /** Writes `length` bytes from `source[offset..]` at `iova`. */
  write(iova: number, source: Uint8Array, offset = 0, length = source.length - offset): number {
    const result = this.engine.translate(this.device, iova, length, true);
    this.lastResult = result;
    if (result !== DMA_OK) return result;
    const fragments = this.engine.fragments;
    let at = offset;
    for (let i = 0; i < this.engine.fragmentCount; i++) {
      const physical = fragments[2 * i]!;
      const bytes = fragments[2 * i + 1]!;
      copyBytes(source, at, this.#ram, physical, bytes);
      at += bytes;
    }
    return result;
  }

  /** Fills `length` bytes at `iova` with `value`. */
  fill(iova: number, length: number, value: number): number {
    const result = this.engine.translate(this.device, iova, length, true);
    this.lastResult = result;
    if (result !== DMA_OK) return result;
    const fragments = this.engine.fragments;
    for (let i = 0; i < this.engine.fragmentCount; i++) {
      const physical = fragments[2 * i]!;
      this.#ram.fill(value, physical, physical + fragments[2 * i + 1]!);
    }
    return result;
  }

  /**
   * Device-internal copy from `sourceIova` to `destinationIova` (a copy engine's transfer).
   * Both ranges are translated before any byte moves.
   */
  copy(sourceIova: number, destinationIova: number, length: number): number {
    let result = this.engine.translate(this.device, sourceIova, length, false);
    if (result !== DMA_OK) return (this.lastResult = result);
    const sourceCount = this.engine.fragmentCount;
    if (this.#sourceFragments.length < 2 * sourceCount) this.#sourceFragments = new Float64Array(2 * sourceCount);
    const source = this.#sourceFragments;
    const translated = this.engine.fragments;
    for (let i = 0; i < 2 * sourceCount; i++) source[i] = translated[i]!;
    result = this.engine.translate(this.device, destinationIova, length, true);
    this.lastResult = result;
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

  /** A little-endian 32-bit read; -1 on failure (see lastResult). */
  readU32(iova: number): number {
    const offset = iova - this.#microPage;
    if (this.#sequence[kSequenceField] === this.#microSequence && offset >= 0 && offset <= PAGE - 4 && (this.#microAccess & 1) !== 0) {
      this.lastResult = DMA_OK;
      return this.#view.getUint32(this.#microPhysical + offset, true);
    }
    return this.#readSlow(iova, 4);
  }

  /** A little-endian 64-bit read as a number (exact below 2^53); -1 on failure. */
  readU64(iova: number): number {
    const offset = iova - this.#microPage;
    if (this.#sequence[kSequenceField] === this.#microSequence && offset >= 0 && offset <= PAGE - 8 && (this.#microAccess & 1) !== 0) {
      this.lastResult = DMA_OK;
      const at = this.#microPhysical + offset;
      return this.#view.getUint32(at, true) + this.#view.getUint32(at + 4, true) * TWO_32;
    }
    return this.#readSlow(iova, 8);
  }

  writeU32(iova: number, value: number): number {
    const offset = iova - this.#microPage;
    if (this.#sequence[kSequenceField] === this.#microSequence && offset >= 0 && offset <= PAGE - 4 && (this.#microAccess & 2) !== 0) {
      this.#view.setUint32(this.#microPhysical + offset, value, true);
      return (this.lastResult = DMA_OK);
    }
    return this.#writeSlow(iova, 4, value);
  }

  /** A little-endian 64-bit write of a non-negative safe integer. */
  writeU64(iova: number, value: number): number {
    const offset = iova - this.#microPage;
    if (this.#sequence[kSequenceField] === this.#microSequence && offset >= 0 && offset <= PAGE - 8 && (this.#microAccess & 2) !== 0) {
      const at = this.#microPhysical + offset;
      this.#view.setUint32(at, value % TWO_32, true);
      this.#view.setUint32(at + 4, Math.floor(value / TWO_32), true);
      return (this.lastResult = DMA_OK);
    }
    return this.#writeSlow(iova, 8, value);
  }

  /** Forgets the micro-TLB (the invalidation sequence does this by itself; for tests). */
  forgetMicroTlb(): void {
    this.#microSequence = NaN;
  }

  #readSlow(iova: number, size: number): number {
    const result = this.engine.translate(this.device, iova, size, false);
    this.lastResult = result;
    if (result !== DMA_OK) return -1;
    let at: number;
    let view: DataView;
    if (this.engine.fragmentCount === 1) {
      this.#remember(iova, size);
      at = this.engine.fragments[0]!;
      view = this.#view;
    } else {
      this.#gather(false);
      at = 0;
      view = scratchView;
    }
    return size === 4 ? view.getUint32(at, true) : view.getUint32(at, true) + view.getUint32(at + 4, true) * TWO_32;
  }

  #writeSlow(iova: number, size: number, value: number): number {
    const result = this.engine.translate(this.device, iova, size, true);
    this.lastResult = result;
    if (result !== DMA_OK) return result;
    let at: number;
    let view: DataView;
    if (this.engine.fragmentCount === 1) {
      this.#remember(iova, size);
      at = this.engine.fragments[0]!;
      view = this.#view;
    } else {
      at = 0;
      view = scratchView;
    }
    if (size === 4) view.setUint32(at, value, true);
    else {
      view.setUint32(at, value % TWO_32, true);
      view.setUint32(at + 4, Math.floor(value / TWO_32), true);
    }
    if (this.engine.fragmentCount !== 1) this.#gather(true);
    return result;
  }

  /** Fills the micro-TLB from a one-fragment translation of `iova`, if the access lies in one page. */
  #remember(iova: number, size: number): void {
    const inPage = iova % PAGE;
    // Two physically adjacent pages coalesce into one fragment, but their access may differ.
    if (inPage + size > PAGE) return;
    this.#microSequence = this.engine.sequence;
    this.#microPage = iova - inPage;
    this.#microPhysical = this.engine.fragments[0]! - inPage;
    this.#microAccess = this.engine.lastAccess;
  }

  /** Moves an access that straddles two pages between guest memory and the scratch word. */
  #gather(write: boolean): void {
    const fragments = this.engine.fragments;
    let at = 0;
    for (let i = 0; i < this.engine.fragmentCount; i++) {
      const physical = fragments[2 * i]!;
      const bytes = fragments[2 * i + 1]!;
      for (let b = 0; b < bytes; b++, at++) {
        if (write) this.#ram[physical + b] = scratchBytes[at]!;
        else scratchBytes[at] = this.#ram[physical + b]!;
      }
    }
  }
}

const scratchBytes = new Uint8Array(8);
const scratchView = new DataView(scratchBytes.buffer);

/** Copies between two byte arrays without a view when they share memory. */
export function copyBytes(source: Uint8Array, sourceOffset: number, destination: Uint8Array, destinationOffset: number, length: number): void {
  if (source === destination) {
    destination.copyWithin(destinationOffset, sourceOffset, sourceOffset + length);
  } else if (length <= 64) {
    for (let i = 0; i < length; i++) destination[destinationOffset + i] = source[sourceOffset + i]!;
  } else {
    destination.set(source.subarray(sourceOffset, sourceOffset + length), destinationOffset);
  }
}
