import { type BufferAllocator, sharedBuffer } from '../base/buffers.js';
import { DeviceControlTable } from './device-control-table.js';
import { MAX_REGISTER_BYTES } from './function-model.js';

/**
 * The device side's memory, handed to every worker once next to the IOMMU's:
 *   registers   one MAX_REGISTER_BYTES register file (BAR0) per function slot
 *   memory      the device memory arena: device-private storage (a disk's media, a NIC's
 *               receive queue), carved per function at addFunction; never reachable by DMA
 *   control     the device control table (locks, pending work, arena placement, peers)
 */
export interface DeviceBuffers {
  registers: ArrayBufferLike;
  memory: ArrayBufferLike;
  control: ArrayBufferLike;
}

export interface DeviceSharedState {
  registers: ArrayBufferLike;
  memory: Uint8Array;
  control: DeviceControlTable;
}

/** The device side's buffers, from `allocate` (SharedArrayBuffers unless the data plane runs on this thread). */
export function createDeviceBuffers(functions: number, memoryBytes: number, allocate: BufferAllocator = sharedBuffer): DeviceBuffers {
  return {
    registers: allocate(functions * MAX_REGISTER_BYTES),
    memory: allocate(memoryBytes),
    control: DeviceControlTable.create(functions, allocate).buffer,
  };
}

export function attachDeviceState(buffers: DeviceBuffers): DeviceSharedState {
  return {
    registers: buffers.registers,
    memory: new Uint8Array(buffers.memory),
    control: new DeviceControlTable(buffers.control),
  };
}
