import { type BufferAllocator, sharedBuffer } from '../../base/buffers.js';
import { Int32RecordTable } from '../../base/int32-record-table.js';

/**
 * Worker slots: which thread owns which fault ring, and how far each busy worker has caught
 * up with the invalidation log (so that page tables can be recycled safely).
 *
 * Layout: `capacity` records of 48 bytes: 4 Int32 fields, then 4 Float64 figures.
 *
 *   kSlotOwnerField     threadId of the worker holding the slot, 0 when free
 *   kSlotBusyField      1 while the worker runs a task (and may be walking page tables)
 *   kSlotAppliedField   the invalidation sequence the worker had applied when it last
 *                       synchronised (see data-plane/translation-engine.ts)
 *   kSlotStatsSequence  how many times the owner has published its figures
 *   figures             two halves of (IOTLB hits, IOTLB misses); the owner writes the half
 *                       the next sequence selects, then publishes that sequence. A worker that
 *                       dies half-way leaves the published half whole, and a reader retries only
 *                       when the owner published meanwhile (at most once per task), so reading
 *                       never waits on a dead worker. Published at the end of each task, never
 *                       per access (platform.workerStats()).
 *
 * A table unlinked before sequence R (PageTableAllocator.retire) is unreachable for a worker
 * that is idle or has applied a sequence >= R. Sequences are free-running Int32 counters, so
 * comparisons are made on ages relative to the current sequence, which survive wrap-around.
 *
 * A worker claims a slot with compareExchange on its owner field when it starts; the main
 * thread frees the slot when the worker pool reports the worker gone (after draining its fault
 * ring), before the pool starts its replacement, which therefore claims the same slot.
 */
const SLOT_RECORD_INTS = 12;
const SLOT_RECORD_DOUBLES = SLOT_RECORD_INTS / 2;
const kSlotOwnerField = 0;
const kSlotBusyField = 1;
const kSlotAppliedField = 2;
const kSlotStatsSequence = 3;
/** Float64 index of the first half of the figures within a record; each half is (hits, misses). */
const kSlotFiguresDouble = 2;

/** One worker's figures, as platform.workerStats() reports them. */
export interface WorkerStats {
  /** The worker slot (also the index of the worker's fault ring). */
  slot: number;
  /** The worker's thread id (Node) or the id its pool gave it (Web Worker). */
  threadId: number;
  /** Whether it is running a task now. */
  busy: boolean;
  /** IOTLB lookups that hit and that missed (and walked), as of the worker's last finished task. */
  iotlbHits: number;
  iotlbMisses: number;
}

export class WorkerSlots extends Int32RecordTable {
  readonly #figures: Float64Array;

  static byteLengthFor(capacity: number): number {
    return Int32RecordTable.bytesFor(SLOT_RECORD_INTS, capacity);
  }

  static create(capacity: number, allocate: BufferAllocator = sharedBuffer): WorkerSlots {
    return new WorkerSlots(allocate(WorkerSlots.byteLengthFor(capacity)));
  }

  constructor(buffer: ArrayBufferLike) {
    super(buffer, SLOT_RECORD_INTS);
    this.#figures = new Float64Array(buffer);
  }

  /** Worker side: claims a free slot for `threadId` (its figures start from zero); -1 when all are taken. */
  claim(threadId: number): number {
    for (let slot = 0; slot < this.capacity; slot++) {
      if (Atomics.compareExchange(this.fields, this.indexOf(slot, kSlotOwnerField), 0, threadId) === 0) {
        this.publishStats(slot, 0, 0);
        return slot;
      }
    }
    return -1;
  }

  /** Worker side, by the slot's owner only: its IOTLB figures now (at the end of a task). */
  publishStats(slot: number, hits: number, misses: number): void {
    const next = (this.get(slot, kSlotStatsSequence) + 1) | 0;
    const at = slot * SLOT_RECORD_DOUBLES + kSlotFiguresDouble + (next & 1) * 2;
    this.#figures[at] = hits;
    this.#figures[at + 1] = misses;
    this.set(slot, kSlotStatsSequence, next);
  }

  /** Main side: the figures of every slot a worker holds now, in slot order. */
  stats(): WorkerStats[] {
    const all: WorkerStats[] = [];
    for (let slot = 0; slot < this.capacity; slot++) {
      const threadId = this.get(slot, kSlotOwnerField);
      if (threadId === 0) continue;
      let hits: number;
      let misses: number;
      let sequence: number;
      do {
        sequence = this.get(slot, kSlotStatsSequence);
        const at = slot * SLOT_RECORD_DOUBLES + kSlotFiguresDouble + (sequence & 1) * 2;
        hits = this.#figures[at]!;
        misses = this.#figures[at + 1]!;
      } while (this.get(slot, kSlotStatsSequence) !== sequence);
      all.push({ slot, threadId, busy: this.get(slot, kSlotBusyField) === 1, iotlbHits: hits, iotlbMisses: misses });
    }
    return all;
  }

  /** Main side: the slot owned by `threadId`, or -1. */
  slotOf(threadId: number): number {
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.get(slot, kSlotOwnerField) === threadId) return slot;
    }
    return -1;
  }

  /** Main side: frees a dead worker's slot. */
  release(slot: number): void {
    this.set(slot, kSlotBusyField, 0);
    this.set(slot, kSlotOwnerField, 0);
  }

  /** Worker side: "I have applied the log up to `sequence` and may be walking tables". */
  markBusy(slot: number, sequence: number): void {
    // Applied first, then busy: a reader that sees busy also sees this sequence or a later one.
    this.set(slot, kSlotAppliedField, sequence);
    this.set(slot, kSlotBusyField, 1);
  }

  markIdle(slot: number): void {
    this.set(slot, kSlotBusyField, 0);
  }

  /**
   * Main side: true when every busy worker has applied `sequence` or later, so that tables
   * retired at `sequence` are out of every walker's reach. `current` is the log's sequence now.
   */
  allCaughtUpWith(sequence: number, current: number): boolean {
    const age = (current - sequence) | 0;
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.get(slot, kSlotBusyField) === 0) continue;
      const applied = this.get(slot, kSlotAppliedField);
      if (((current - applied) | 0) > age) return false;
    }
    return true;
  }
}
