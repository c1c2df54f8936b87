import { type BufferAllocator, sharedBuffer } from '../../base/buffers.js';

/**
 * The device context table: for each PCI function slot, whether it may master the bus and
 * which domain (if any) translates its DMA. Workers read it at the start of every DMA.
 *
 * Layout: `capacity` records of 4 Int32 fields (16 bytes):
 *
 *   kContextDomainField        domain slot, or kNoDomain (all DMA faults: UnsupportedUpstreamTransaction)
 *   kContextFlagsField         kContextPresent | kContextBusMaster | kContextBehindIommu | kContextFaultReporting
 *   kContextInputMappingField  input mapping ID (requester ID plus the segment's base)
 *
 * Writers: the control plane and the PCI bus (main thread). Every change is followed by a
 * bump of the invalidation sequence so that workers drop translations cached per device.
 */
export const CONTEXT_RECORD_INTS = 4;
export const kNoDomain = -1;

export const kContextDomainField = 0;
export const kContextFlagsField = 1;
export const kContextInputMappingField = 2;

export const kContextPresent = 0x1;
/** Mirror of the command register's Bus Master Enable bit. */
export const kContextBusMaster = 0x2;
/** Clear: the function's DMA reaches guest memory untranslated (not behind the IOMMU). */
export const kContextBehindIommu = 0x4;
/** Set by SetDeviceFaultReportingEx: faults go to the fault rings, otherwise only counted. */
export const kContextFaultReporting = 0x8;

export class DeviceContextTable {
  readonly buffer: ArrayBufferLike;
  readonly fields: Int32Array;
  readonly capacity: number;

  static byteLengthFor(capacity: number): number {
    return capacity * CONTEXT_RECORD_INTS * 4;
  }

  static create(capacity: number, allocate: BufferAllocator = sharedBuffer): DeviceContextTable {
    const table = new DeviceContextTable(allocate(DeviceContextTable.byteLengthFor(capacity)));
    for (let slot = 0; slot < capacity; slot++) table.fields[slot * CONTEXT_RECORD_INTS + kContextDomainField] = kNoDomain;
    return table;
  }

  constructor(buffer: ArrayBufferLike) {
    this.buffer = buffer;
    this.fields = new Int32Array(buffer);
    this.capacity = buffer.byteLength / (CONTEXT_RECORD_INTS * 4);
  }

  get(slot: number, field: number): number {
    return Atomics.load(this.fields, slot * CONTEXT_RECORD_INTS + field);
  }

  set(slot: number, field: number, value: number): void {
    Atomics.store(this.fields, slot * CONTEXT_RECORD_INTS + field, value);
  }

  setFlag(slot: number, flag: number, on: boolean): void {
    const index = slot * CONTEXT_RECORD_INTS + kContextFlagsField;
    if (on) Atomics.or(this.fields, index, flag);
    else Atomics.and(this.fields, index, ~flag);
  }
}
