/**
 * Worker slots: which thread owns which fault ring, and how far each busy worker has caught
 * up with the invalidation log (so that page tables can be recycled safely).
 *
 * Layout: `capacity` records of 4 Int32 fields:
 *
 *   kSlotOwnerField     threadId of the worker holding the slot, 0 when free
 *   kSlotBusyField      1 while the worker runs a task (and may be walking page tables)
 *   kSlotAppliedField   the invalidation sequence the worker had applied when it last
 *                       synchronised (see data-plane/translation-engine.ts)
 *
 * A table unlinked before sequence R (PageTableAllocator.retire) is unreachable for a worker
 * that is idle or has applied a sequence >= R. Sequences are free-running Int32 counters, so
 * comparisons are made on ages relative to the current sequence, which survive wrap-around.
 *
 * A worker claims a slot with compareExchange on its owner field when it starts; the main
 * thread frees the slot when piscina reports the worker gone (after draining its fault ring).
 */
const SLOT_RECORD_INTS = 4;
const kSlotOwnerField = 0;
const kSlotBusyField = 1;
const kSlotAppliedField = 2;

export class WorkerSlots {
  readonly buffer: SharedArrayBuffer;
  readonly fields: Int32Array;
  readonly capacity: number;

  static byteLengthFor(capacity: number): number {
    return capacity * SLOT_RECORD_INTS * 4;
  }

  static create(capacity: number): WorkerSlots {
    return new WorkerSlots(new SharedArrayBuffer(WorkerSlots.byteLengthFor(capacity)));
  }

  constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.fields = new Int32Array(buffer);
    this.capacity = buffer.byteLength / (SLOT_RECORD_INTS * 4);
  }

  /** Worker side: claims a free slot for `threadId`; -1 when all are taken. */
  claim(threadId: number): number {
    for (let slot = 0; slot < this.capacity; slot++) {
      if (Atomics.compareExchange(this.fields, slot * SLOT_RECORD_INTS + kSlotOwnerField, 0, threadId) === 0) return slot;
    }
    return -1;
  }

  /** Main side: the slot owned by `threadId`, or -1. */
  slotOf(threadId: number): number {
    for (let slot = 0; slot < this.capacity; slot++) {
      if (Atomics.load(this.fields, slot * SLOT_RECORD_INTS + kSlotOwnerField) === threadId) return slot;
    }
    return -1;
  }

  ownerOf(slot: number): number {
    return Atomics.load(this.fields, slot * SLOT_RECORD_INTS + kSlotOwnerField);
  }

  /** Main side: frees a dead worker's slot. */
  release(slot: number): void {
    Atomics.store(this.fields, slot * SLOT_RECORD_INTS + kSlotBusyField, 0);
    Atomics.store(this.fields, slot * SLOT_RECORD_INTS + kSlotOwnerField, 0);
  }

  /** Worker side: "I have applied the log up to `sequence` and may be walking tables". */
  markBusy(slot: number, sequence: number): void {
    // Applied first, then busy: a reader that sees busy also sees this sequence or a later one.
    Atomics.store(this.fields, slot * SLOT_RECORD_INTS + kSlotAppliedField, sequence);
    Atomics.store(this.fields, slot * SLOT_RECORD_INTS + kSlotBusyField, 1);
  }

  markIdle(slot: number): void {
    Atomics.store(this.fields, slot * SLOT_RECORD_INTS + kSlotBusyField, 0);
  }

  /**
   * Main side: true when every busy worker has applied `sequence` or later, so that tables
   * retired at `sequence` are out of every walker's reach. `current` is the log's sequence now.
   */
  allCaughtUpWith(sequence: number, current: number): boolean {
    const age = (current - sequence) | 0;
    for (let slot = 0; slot < this.capacity; slot++) {
      const base = slot * SLOT_RECORD_INTS;
      if (Atomics.load(this.fields, base + kSlotBusyField) === 0) continue;
      const applied = Atomics.load(this.fields, base + kSlotAppliedField);
      if (((current - applied) | 0) > age) return false;
    }
    return true;
  }
}
