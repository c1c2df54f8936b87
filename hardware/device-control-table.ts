import { type BufferAllocator, sharedBuffer } from '../base/buffers.js';
import { Int32RecordTable } from '../base/int32-record-table.js';

/**
 * Per-function bookkeeping of the device models, in shared memory so that whichever worker
 * runs a device finds it: the device's lock, its pending-work flag, where its private memory
 * lies in the device memory arena, and its wired peer.
 *
 * Layout: `capacity` records of 8 Int32 fields:
 *   kControlLock          0 free; 1 while a worker runs the device (compareExchange 0 -> 1)
 *   kControlPending       1 when work arrived that no worker has looked at yet
 *   kControlPrivatePage   first 4 KiB page of the device's private memory in the arena
 *   kControlPrivatePages  its length in pages (0: none)
 *   kControlPeer          slot of the device at the other end of a wire, or -1
 *   kControlModel         index of the device model (devices/models/registry.ts)
 *
 * Protocol: a doorbell (main thread) stores kControlPending = 1 and schedules a work task.
 * The worker takes the lock, clears kControlPending, processes a batch, releases the lock;
 * the main thread schedules again if kControlPending is set again by then.
 */
const CONTROL_RECORD_INTS = 8;
const kControlLock = 0;
export const kControlPending = 1;
export const kControlPrivatePage = 2;
export const kControlPrivatePages = 3;
export const kControlPeer = 4;
export const kControlModel = 5;

export class DeviceControlTable extends Int32RecordTable {
  static byteLengthFor(capacity: number): number {
    return Int32RecordTable.bytesFor(CONTROL_RECORD_INTS, capacity);
  }

  static create(capacity: number, allocate: BufferAllocator = sharedBuffer): DeviceControlTable {
    return new DeviceControlTable(allocate(DeviceControlTable.byteLengthFor(capacity))).initialise(kControlPeer, -1);
  }

  constructor(buffer: ArrayBufferLike) {
    super(buffer, CONTROL_RECORD_INTS);
  }

  /** Worker side: takes the device; false if another worker holds it. */
  tryLock(slot: number): boolean {
    return Atomics.compareExchange(this.fields, this.indexOf(slot, kControlLock), 0, 1) === 0;
  }

  unlock(slot: number): void {
    this.set(slot, kControlLock, 0);
  }
}
