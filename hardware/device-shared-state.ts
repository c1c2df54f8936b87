import { DeviceControlTable } from './device-control-table.js';
import { MAX_REGISTER_BYTES } from './function-model.js';

/**
 * The device side's shared memory, handed to every worker once next to the IOMMU's:
 *   registers   one MAX_REGISTER_BYTES register file (BAR0) per function slot
 *   memory      the device memory arena: device-private storage (a disk's media, a NIC's
 *               receive queue), carved per function at addFunction; never reachable by DMA
 *   control     the device control table (locks, pending work, arena placement, peers)
 */
export interface DeviceBuffers {
  registers: SharedArrayBuffer;
  memory: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

export interface DeviceSharedState {
  registers: SharedArrayBuffer;
  memory: Uint8Array;
  control: DeviceControlTable;
}

export function createDeviceBuffers(functions: number, memoryBytes: number): DeviceBuffers {
  return {
    registers: new SharedArrayBuffer(functions * MAX_REGISTER_BYTES),
    memory: new SharedArrayBuffer(memoryBytes),
    control: DeviceControlTable.create(functions).buffer,
  };
}

export function attachDeviceState(buffers: DeviceBuffers): DeviceSharedState {
  return {
    registers: buffers.registers,
    memory: new Uint8Array(buffers.memory),
    control: new DeviceControlTable(buffers.control),
  };
}
