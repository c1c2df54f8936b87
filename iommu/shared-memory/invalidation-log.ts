import { type BufferAllocator, sharedBuffer } from '../../base/buffers.js';

/**
 * The invalidation log: how the control plane tells every worker which cached translations
 * died, without a message and without waiting for anyone.
 *
 * Layout (one SharedArrayBuffer):
 *
 *   bytes 0..7     Int32 header
 *                    [kSequenceField]  records ever published (free-running Int32); the "epoch"
 *                                      every worker compares before it trusts a cached
 *                                      translation (see data-plane/translation-engine.ts)
 *                    [kCapacityField]  records in the ring (a power of two)
 *   bytes 8..15    padding
 *   bytes 16..     `capacity` records of 4 Float64 values:
 *                    [kind, slot, firstPage, pageCount]
 *
 * Record kinds:
 *   kInvalidateRange    domain `slot`, pages [firstPage, firstPage + pageCount)
 *   kInvalidateDomain   every translation of domain `slot` (its generation moved on too)
 *   kInvalidateDevice   device context `slot` changed (attach, detach, bus master, reporting)
 *
 * Single writer (main thread): writes record n into ring slot n % capacity, then
 * Atomics.store(sequence, n + 1). Readers (workers) remember the last sequence they applied.
 * A reader that falls `capacity` or more records behind, or finds that the writer has lapped
 * the record it just read (sequence - index >= capacity after the read), cannot trust the
 * ring and drops its whole IOTLB instead: always safe, merely slower.
 */
export const kSequenceField = 0;
const kCapacityField = 1;
const HEADER_BYTES = 16;
const LOG_RECORD_DOUBLES = 4;

export const kInvalidateRange = 1;
export const kInvalidateDomain = 2;
export const kInvalidateDevice = 3;

export class InvalidationLog {
  readonly buffer: ArrayBufferLike;
  readonly header: Int32Array;
  readonly records: Float64Array;
  readonly capacity: number;
  readonly #mask: number;

  static byteLengthFor(capacity: number): number {
    return HEADER_BYTES + capacity * LOG_RECORD_DOUBLES * 8;
  }

  static create(capacity: number, allocate: BufferAllocator = sharedBuffer): InvalidationLog {
    if (!Number.isInteger(Math.log2(capacity))) throw new RangeError(`invalidation log capacity must be a power of two (got ${capacity})`);
    const buffer = allocate(InvalidationLog.byteLengthFor(capacity));
    new Int32Array(buffer, 0, 2)[kCapacityField] = capacity;
    return new InvalidationLog(buffer);
  }

  constructor(buffer: ArrayBufferLike) {
    this.buffer = buffer;
    this.header = new Int32Array(buffer, 0, 2);
    this.capacity = this.header[kCapacityField]!;
    this.#mask = this.capacity - 1;
    this.records = new Float64Array(buffer, HEADER_BYTES, this.capacity * LOG_RECORD_DOUBLES);
  }

  /** The current sequence (an acquire: later plain reads of shared state see what preceded it). */
  sequence(): number {
    return Atomics.load(this.header, kSequenceField);
  }

  /** Main thread only. Returns the new sequence. */
  publish(kind: number, slot: number, firstPage: number, pageCount: number): number {
    const n = this.header[kSequenceField]!;
    const at = (n & this.#mask) * LOG_RECORD_DOUBLES;
    this.records[at] = kind;
    this.records[at + 1] = slot;
    this.records[at + 2] = firstPage;
    this.records[at + 3] = pageCount;
    // Release: a worker that sees n + 1 sees the record and every state change made before it.
    Atomics.store(this.header, kSequenceField, (n + 1) | 0);
    return (n + 1) | 0;
  }

  /** Ring offset (in doubles) of record `index`. */
  offsetOf(index: number): number {
    return (index & this.#mask) * LOG_RECORD_DOUBLES;
  }
}
