import type { DeviceModelInfo } from '../pci-bus.js';

/**
 * Device models a PCI function can run. 0x7e57 ("test") is the vendor ID of viommu's own
 * emulated devices; it is not a PCI-SIG assignment and no real hardware answers to it.
 */
export const VIOMMU_VENDOR_ID = 0x7e57;

export const DEVICE_MODELS: ReadonlyMap<string, DeviceModelInfo> = new Map([
  /** A bare DMA master: platform.dma() issues its accesses. Class 0xff0000 (unassigned). */
  ['dma-test', { vendorId: VIOMMU_VENDOR_ID, deviceId: 0x0001, classCode: 0xff0000 }],
]);
