import { type BufferAllocator, sharedBuffer } from '../../base/buffers.js';
import { Int32RecordTable } from '../../base/int32-record-table.js';

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
 * Writer: control/device-contexts.ts (main thread), for the routines and for the bus's hooks
 * (a function added, Bus Master Enable changed). Every change a worker may have cached is
 * followed by an invalidation record, so that workers drop what they cached per device.
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

export class DeviceContextTable extends Int32RecordTable {
  static byteLengthFor(capacity: number): number {
    return Int32RecordTable.bytesFor(CONTEXT_RECORD_INTS, capacity);
  }

  static create(capacity: number, allocate: BufferAllocator = sharedBuffer): DeviceContextTable {
    return new DeviceContextTable(allocate(DeviceContextTable.byteLengthFor(capacity))).initialise(kContextDomainField, kNoDomain);
  }

  constructor(buffer: ArrayBufferLike) {
    super(buffer, CONTEXT_RECORD_INTS);
  }

  setFlag(slot: number, flag: number, on: boolean): void {
    const index = this.indexOf(slot, kContextFlagsField);
    if (on) Atomics.or(this.fields, index, flag);
    else Atomics.and(this.fields, index, ~flag);
  }
}
