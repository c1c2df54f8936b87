/**
 * 0x7e57 ("test") is the vendor ID of viommu's own emulated devices. It is not a PCI-SIG
 * assignment and no real hardware answers to it; each model's header names the hardware it
 * imitates.
 */
export const VIOMMU_VENDOR_ID = 0x7e57;
