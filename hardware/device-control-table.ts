import { type BufferAllocator, sharedBuffer } from '../base/buffers.js';

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
export const CONTROL_RECORD_INTS = 8;
const kControlLock = 0;
export const kControlPending = 1;
export const kControlPrivatePage = 2;
export const kControlPrivatePages = 3;
export const kControlPeer = 4;
export const kControlModel = 5;

export class DeviceControlTable {
  readonly buffer: ArrayBufferLike;
  readonly fields: Int32Array;
  readonly capacity: number;

  static byteLengthFor(capacity: number): number {
    return capacity * CONTROL_RECORD_INTS * 4;
  }

  static create(capacity: number, allocate: BufferAllocator = sharedBuffer): DeviceControlTable {
    const table = new DeviceControlTable(allocate(DeviceControlTable.byteLengthFor(capacity)));
    for (let slot = 0; slot < capacity; slot++) table.fields[slot * CONTROL_RECORD_INTS + kControlPeer] = -1;
    return table;
  }

  constructor(buffer: ArrayBufferLike) {
    this.buffer = buffer;
    this.fields = new Int32Array(buffer);
    this.capacity = buffer.byteLength / (CONTROL_RECORD_INTS * 4);
  }

  get(slot: number, field: number): number {
    return Atomics.load(this.fields, slot * CONTROL_RECORD_INTS + field);
  }

  set(slot: number, field: number, value: number): void {
    Atomics.store(this.fields, slot * CONTROL_RECORD_INTS + field, value);
  }

  /** Worker side: takes the device; false if another worker holds it. */
  tryLock(slot: number): boolean {
    return Atomics.compareExchange(this.fields, slot * CONTROL_RECORD_INTS + kControlLock, 0, 1) === 0;
  }

  unlock(slot: number): void {
    Atomics.store(this.fields, slot * CONTROL_RECORD_INTS + kControlLock, 0);
  }
}
