/**
 * The NIC's wire queues: how a packet crosses from one NIC to another (or to itself, in
 * loopback) without either device touching the other's registers or rings.
 *
 * A NIC's device-private memory (never reachable by DMA) holds two queues of `wireBytes`
 * each (a power of two, 4 KiB..64 MiB; 256 KiB by default):
 *
 *   0x0000                  wire queue header (64 bytes)      producer: the wired peer's TX
 *   0x0040                  loopback queue header (64 bytes)  producer: this device's TX
 *   0x1000                  wire queue data (wireBytes)
 *   0x1000 + wireBytes      loopback queue data (wireBytes)
 *
 * The consumer of both is this device's RX. Each queue is single-producer single-consumer:
 * the platform runs a device in at most one worker at a time, so a NIC's TX (the only
 * producer of its peer's wire queue, and of its own loopback queue) never runs twice at once,
 * and neither does its RX (the only consumer). Two queues rather than one because a NIC in
 * loopback whose peer keeps sending would otherwise have two producers.
 *
 * Queue header, Int32 fields (all accessed with Atomics):
 *   +0  WRITE     bytes ever written, free-running (wraps at 2^32); the producer stores it
 *                 after the record's bytes, which publishes them
 *   +4  READ      bytes ever consumed, free-running; the consumer stores it after copying a
 *                 record out, which gives its space back
 *   +8  DROPPED   packets dropped and not yet counted in the receiver's RX_DROPPED: the
 *                 producer adds 1 when a record does not fit; the consumer takes the count
 *                 with Atomics.exchange(…, 0) and adds it to RX_DROPPED
 *   +12 ENQUEUED  packets ever queued (statistics; producer)
 *
 * Record: a 8-byte header {u32 length, u32 sender slot} and the packet, padded to 8 bytes.
 * Positions are byte counts modulo the capacity; a header never straddles the end (records
 * are 8-byte aligned and the capacity is a multiple of 8), a packet may (it is copied in two
 * parts). Used space is (WRITE - READ) mod 2^32, so a full queue can be told from an empty one.
 */
export const WIRE = Object.freeze({
  /** Headers of both queues live in the first page. */
  HEADER_PAGE_BYTES: 4096,
  HEADER_STRIDE: 64,
  WRITE: 0,
  READ: 1,
  DROPPED: 2,
  ENQUEUED: 3,
  RECORD_HEADER_BYTES: 8,
  /** Index of the queue the wired peer fills, and of the queue the device fills itself. */
  QUEUE_WIRE: 0,
  QUEUE_LOOPBACK: 1,
  MIN_BYTES: 4096,
  MAX_BYTES: 64 * 1024 * 1024,
  DEFAULT_BYTES: 256 * 1024,
} as const);

/** Bytes a packet of `length` bytes takes in a wire queue. */
export function wireRecordBytes(length: number): number {
  return WIRE.RECORD_HEADER_BYTES + Math.ceil(length / 8) * 8;
}

/** Device-private bytes of a NIC whose queues hold `wireBytes` each. */
export function wireMemoryBytes(wireBytes: number): number {
  return WIRE.HEADER_PAGE_BYTES + 2 * wireBytes;
}

/** Capacity of each queue in a NIC's private memory, or 0 if `memory` has no valid layout. */
function wireCapacityOf(memory: Uint8Array): number {
  const capacity = (memory.byteLength - WIRE.HEADER_PAGE_BYTES) / 2;
  if (!Number.isInteger(capacity) || capacity < WIRE.MIN_BYTES || (capacity & (capacity - 1)) !== 0) return 0;
  return capacity;
}

/** One single-producer single-consumer packet queue in a NIC's private memory. */
export class WireQueue {
  readonly capacity: number;
  readonly #header: Int32Array;
  readonly #data: Uint8Array;
  readonly #view: DataView;

  /** The queue `which` (WIRE.QUEUE_WIRE or WIRE.QUEUE_LOOPBACK) of the NIC owning `memory`, or null. */
  static of(memory: Uint8Array, which: number): WireQueue | null {
    const capacity = wireCapacityOf(memory);
    return capacity === 0 ? null : new WireQueue(memory, which, capacity);
  }

  private constructor(memory: Uint8Array, which: number, capacity: number) {
    this.capacity = capacity;
    this.#header = new Int32Array(memory.buffer, memory.byteOffset + which * WIRE.HEADER_STRIDE, WIRE.HEADER_STRIDE / 4);
    this.#data = memory.subarray(WIRE.HEADER_PAGE_BYTES + which * capacity, WIRE.HEADER_PAGE_BYTES + (which + 1) * capacity);
    this.#view = new DataView(this.#data.buffer, this.#data.byteOffset, capacity);
  }

  /** Bytes in the queue now. */
  get used(): number {
    return (Atomics.load(this.#header, WIRE.WRITE) - Atomics.load(this.#header, WIRE.READ)) >>> 0;
  }

  // ---- producer side -------------------------------------------------------------------

  /**
   * Queues `length` bytes of `source` from `from`, sent by device `sender`. False (and the
   * drop counted in the header) when the record does not fit.
   */
  push(source: Uint8Array, from: number, length: number, sender: number): boolean {
    const header = this.#header;
    const write = Atomics.load(header, WIRE.WRITE);
    const used = (write - Atomics.load(header, WIRE.READ)) >>> 0;
    const record = wireRecordBytes(length);
    if (record > this.capacity - used) {
      Atomics.add(header, WIRE.DROPPED, 1);
      return false;
    }
    const mask = this.capacity - 1;
    const at = write & mask;
    this.#view.setUint32(at, length, true);
    this.#view.setUint32(at + 4, sender >>> 0, true);
    this.#copyIn(source, from, (at + WIRE.RECORD_HEADER_BYTES) & mask, length);
    // Publishes the record: the consumer reads WRITE before it reads any byte of it.
    Atomics.store(header, WIRE.WRITE, (write + record) | 0);
    Atomics.add(header, WIRE.ENQUEUED, 1);
    return true;
  }

  // ---- consumer side -------------------------------------------------------------------

  /** Length of the packet at the head of the queue, or -1 if the queue is empty. */
  peekLength(): number {
    const header = this.#header;
    const read = Atomics.load(header, WIRE.READ);
    const used = (Atomics.load(header, WIRE.WRITE) - read) >>> 0;
    if (used === 0) return -1;
    const length = this.#view.getUint32(read & (this.capacity - 1), true);
    if (used > this.capacity || wireRecordBytes(length) > used) {
      // Cannot happen with one producer and one consumer; if it does, the queue is garbage.
      this.discardAll();
      return -1;
    }
    return length;
  }

  /** Copies the head packet into `destination` (which must hold it) and removes it; its length. */
  pop(destination: Uint8Array): number {
    const length = this.peekLength();
    if (length < 0) return -1;
    const read = Atomics.load(this.#header, WIRE.READ);
    const mask = this.capacity - 1;
    this.#copyOut((read + WIRE.RECORD_HEADER_BYTES) & mask, destination, length);
    Atomics.store(this.#header, WIRE.READ, (read + wireRecordBytes(length)) | 0);
    return length;
  }

  /** Removes the head packet without reading it. */
  skip(): void {
    const length = this.peekLength();
    if (length < 0) return;
    const read = Atomics.load(this.#header, WIRE.READ);
    Atomics.store(this.#header, WIRE.READ, (read + wireRecordBytes(length)) | 0);
  }

  /** Empties the queue (consumer side); returns the packets it held. */
  discardAll(): number {
    let packets = 0;
    const header = this.#header;
    const write = Atomics.load(header, WIRE.WRITE);
    let read = Atomics.load(header, WIRE.READ);
    const mask = this.capacity - 1;
    while ((write - read) >>> 0 >= WIRE.RECORD_HEADER_BYTES && (write - read) >>> 0 <= this.capacity) {
      const record = wireRecordBytes(this.#view.getUint32(read & mask, true));
      if (record > (write - read) >>> 0) break;
      read = (read + record) | 0;
      packets++;
    }
    Atomics.store(header, WIRE.READ, write);
    return packets;
  }

  /** Takes the drop count the producer left (consumer side). */
  takeDrops(): number {
    return Atomics.exchange(this.#header, WIRE.DROPPED, 0) >>> 0;
  }

  #copyIn(source: Uint8Array, from: number, at: number, length: number): void {
    const first = Math.min(length, this.capacity - at);
    this.#data.set(source.subarray(from, from + first), at);
    if (first < length) this.#data.set(source.subarray(from + first, from + length), 0);
  }

  #copyOut(at: number, destination: Uint8Array, length: number): void {
    const first = Math.min(length, this.capacity - at);
    destination.set(this.#data.subarray(at, at + first), 0);
    if (first < length) destination.set(this.#data.subarray(0, length - first), first);
  }
}
