/**
 * The shape every shared record table repeats (device contexts, domains, worker slots, the
 * device control table): one buffer (a SharedArrayBuffer, or a plain ArrayBuffer when the
 * data plane runs on the platform's own thread) of `capacity` records, each `recordInts`
 * Int32 fields; field `field` of record `slot` is `fields[slot * recordInts + field]`.
 *
 * Each table keeps its layout where a reader looks for it, at the top of its own file, next
 * to its `k...Field` constants and its record size, and follows the same two-step pattern
 * (as ringbuf.js does): a static `byteLengthFor(capacity)` says how large the buffer must be
 * and a static `create(capacity, allocate)` allocates one on the main thread; the constructor wraps a
 * buffer made elsewhere (another thread's view of the same memory). `get` and `set` go
 * through Atomics; hot paths read `fields` directly with the table's exported record size.
 */
export class Int32RecordTable {
  readonly buffer: ArrayBufferLike;
  readonly fields: Int32Array;
  /** Int32 fields per record. */
  readonly recordInts: number;
  /** Records in the table. */
  readonly capacity: number;

  /** Bytes of a table of `capacity` records of `recordInts` fields: what a table's byteLengthFor answers. */
  static bytesFor(recordInts: number, capacity: number): number {
    return capacity * recordInts * 4;
  }

  constructor(buffer: ArrayBufferLike, recordInts: number) {
    this.buffer = buffer;
    this.fields = new Int32Array(buffer);
    this.recordInts = recordInts;
    this.capacity = buffer.byteLength / (recordInts * 4);
  }

  /** Index in `fields` of `field` of record `slot` (for Atomics other than load and store). */
  indexOf(slot: number, field: number): number {
    return slot * this.recordInts + field;
  }

  get(slot: number, field: number): number {
    return Atomics.load(this.fields, slot * this.recordInts + field);
  }

  set(slot: number, field: number, value: number): void {
    Atomics.store(this.fields, slot * this.recordInts + field, value);
  }

  /**
   * Gives `field` of every record the value `value`: what create() does for a table whose
   * empty record is not all zero, before any other thread sees the buffer.
   */
  protected initialise(field: number, value: number): this {
    for (let slot = 0; slot < this.capacity; slot++) this.fields[slot * this.recordInts + field] = value;
    return this;
  }
}
