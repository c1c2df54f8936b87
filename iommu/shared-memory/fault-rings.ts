import { type BufferAllocator, sharedBuffer } from '../../base/buffers.js';

/**
 * Fault rings: one single-producer/single-consumer ring per worker slot, all in one
 * SharedArrayBuffer. A worker whose DMA faults writes a fixed-size record and goes on; it
 * never waits. A full ring drops the record and counts it, and so does a device that already
 * has a quarter of the ring waiting (so that one flooding device cannot crowd out the rest).
 * The main thread drains every ring (see control/fault-dispatcher.ts).
 *
 * Layout:
 *
 *   bytes 0..31              global header, Int32:
 *                              [kDoorbellField]     bumped by a producer that finds the main
 *                                                   thread asleep; the main thread waits on it
 *                              [kMainWaitingField]  1 while the main thread waits for records
 *                              [kClosingField]      1 once the platform is closing
 *   then per ring (`ringCount` times), ringBytes = 32 + capacity * 32:
 *     bytes 0..31            ring header, Uint32:
 *                              [kWriteIndexField]   records ever written (producer stores)
 *                              [kReadIndexField]    records ever read    (consumer stores)
 *                              [kRaisedField]       faults raised by this producer
 *                              [kDroppedField]      faults lost because the ring was full or
 *                                                   the device had its share of it waiting
 *                              [kSuppressedField]   faults of devices whose reporting is off,
 *                                                   and repeats collapsed into a waiting twin
 *                              [kCollapsedField]    of those, the collapsed repeats
 *     bytes 32..             `capacity` records of 8 Int32 (32 bytes):
 *                              [device slot, domain slot, domain serial, address bits 31..0,
 *                               address bits 52..32, flags, fault type, input mapping ID]
 *
 *   then `devices` Int32 mute flags, one per device slot (after the last ring):
 *                              1 while the main thread delivers that device's faults at its
 *                              rate limit; its producers then publish without ringing the
 *                              doorbell, and the main thread collects those records on its
 *                              own schedule (a flooding device cannot keep it awake)
 *
 * Indices and counters are free-running 32-bit counters; occupancy is (write - read) >>> 0.
 * One slot stays usable for every record: capacity is a power of two and full means
 * occupancy === capacity. Only the indices go through Atomics: a record is written with plain
 * stores before the producer's Atomics.store of the write index publishes it.
 */
const GLOBAL_HEADER_INTS = 8;
export const kDoorbellField = 0;
export const kMainWaitingField = 1;
export const kClosingField = 2;

export const RING_HEADER_INTS = 8;
export const kWriteIndexField = 0;
export const kReadIndexField = 1;
export const kRaisedField = 2;
export const kDroppedField = 3;
export const kSuppressedField = 4;
export const kCollapsedField = 5;

export const FAULT_RECORD_INTS = 8;
export const kRecordDevice = 0;
export const kRecordDomain = 1;
export const kRecordDomainSerial = 2;
export const kRecordAddressLow = 3;
export const kRecordAddressHigh = 4;
export const kRecordFlags = 5;
export const kRecordType = 6;
export const kRecordInputMappingId = 7;

/** Record flag bits, at the positions of FAULT_INFORMATION_ARM64_FLAGS. */
export const kFaultWriteNotRead = 0x1;
export const kFaultAddressValid = 0x8;

export class FaultRings {
  readonly buffer: ArrayBufferLike;
  readonly global: Int32Array;
  /** The whole buffer as Int32 (records) and Uint32 (ring headers); same memory. */
  readonly ints: Int32Array;
  readonly uints: Uint32Array;
  readonly ringCount: number;
  readonly capacity: number;
  /** Per device slot: 1 while the device is muted (see the layout). */
  readonly muted: Int32Array;
  readonly #ringInts: number;

  static byteLengthFor(ringCount: number, capacity: number, devices = 0): number {
    return (GLOBAL_HEADER_INTS + ringCount * (RING_HEADER_INTS + capacity * FAULT_RECORD_INTS) + devices) * 4;
  }

  static create(ringCount: number, capacity: number, devices: number, allocate: BufferAllocator = sharedBuffer): FaultRings {
    if (!Number.isInteger(Math.log2(capacity))) throw new RangeError(`fault ring capacity must be a power of two (got ${capacity})`);
    return new FaultRings(allocate(FaultRings.byteLengthFor(ringCount, capacity, devices)), ringCount, capacity);
  }

  constructor(buffer: ArrayBufferLike, ringCount: number, capacity: number) {
    this.buffer = buffer;
    this.ringCount = ringCount;
    this.capacity = capacity;
    this.#ringInts = RING_HEADER_INTS + capacity * FAULT_RECORD_INTS;
    this.global = new Int32Array(buffer, 0, GLOBAL_HEADER_INTS);
    this.ints = new Int32Array(buffer);
    this.uints = new Uint32Array(buffer);
    // The mute flags fill whatever follows the rings.
    const ringBytes = FaultRings.byteLengthFor(ringCount, capacity);
    this.muted = new Int32Array(buffer, ringBytes, (buffer.byteLength - ringBytes) / 4);
  }

  /** Index (in 32-bit words) of ring `ring`'s header. */
  headerOf(ring: number): number {
    return GLOBAL_HEADER_INTS + ring * this.#ringInts;
  }

  /** Index (in 32-bit words) of record `index` (free-running) of ring `ring`. */
  recordOf(ring: number, index: number): number {
    return this.headerOf(ring) + RING_HEADER_INTS + (index & (this.capacity - 1)) * FAULT_RECORD_INTS;
  }
}
