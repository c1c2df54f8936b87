import type { DeviceModel } from '../device-model.js';
import { VIOMMU_VENDOR_ID } from './vendor.js';

/**
 * A bare DMA master with no registers: its accesses are the ones platform.dma() and
 * platform.dmaBatch() issue on its behalf. The default model of a PCI function.
 */
export const dmaTestModel: DeviceModel = {
  name: 'dma-test',
  vendorId: VIOMMU_VENDOR_ID,
  deviceId: 0x0001,
  classCode: 0xff0000,
  registerBytes: 0,
  isDoorbell: () => false,
  privateMemoryBytes: () => 0,
  reset: () => {},
  process: () => {},
};
