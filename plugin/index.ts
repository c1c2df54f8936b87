/**
 * viommu: an emulated IOMMU for JavaScript virtual machines.
 *
 * The package root: createPlatform() and everything a guest driver, an embedder or a device
 * model needs to name (status codes, enums, structure types).
 */
export { createPlatform, Platform, type DmaRequest, type DmaResult } from './platform.js';
export { restorePlatform, type RestoreOptions, type RestoredPlatform } from './snapshot/restore.js';
export type { RebindNeeded } from './snapshot/restore-iommu.js';
export { SNAPSHOT_VERSION } from './snapshot/snapshot-format.js';
export type { PlatformOptions } from './platform-options.js';
export type { DMA_IOMMU_INTERFACE_EX, DMA_IOMMU_INTERFACE_V2, V2RoutineName } from './interface-table.js';
export { V2_ROUTINE_NAMES } from './interface-table.js';
export * from './ntstatus.js';
export * from './enums.js';
export type * from './types.js';
export type { FaultStats } from './control/fault-dispatcher.js';
export type { DmaProtectionPolicy, Architecture } from './control/dma-protection-policy.js';
export { availableDomainTypes } from './control/dma-protection-policy.js';
export { GuestMemory } from '../devices/guest-memory.js';
export { PciBus } from '../devices/pci-bus.js';
export { PciFunction, type PciFunctionOptions } from '../devices/pci-function.js';
export * from '../devices/pci-config-space.js';
export { Errors } from './errors.js';
export { PAGE_SIZE } from './numbers.js';
export type { WorkerRuntime } from '../workers/worker-runtime.js';
export { DmaPort, DMA_OK, DMA_BLOCKED } from '../devices/dma-port.js';
export { DriverBase, DriverError, type MappedBuffer } from '../devices/drivers/driver-base.js';
export { CopyEngineDriver, type CopyCompletion, type CopyEngineDriverOptions } from '../devices/drivers/copy-engine-driver.js';
export { COPY_ENGINE } from '../devices/models/copy-engine.js';
export { NvmeDriver, NvmeError, type NvmeCompletion, type NvmeCommand, type NvmeDriverOptions, type NvmeIdentity } from '../devices/drivers/nvme-driver.js';
export { NVME } from '../devices/models/nvme.js';
export { NicDriver, type NicDriverOptions, type NicSendOptions, type NicStats } from '../devices/drivers/nic-driver.js';
export { NIC } from '../devices/models/nic.js';
export type { DeviceModel, DeviceWorkContext } from '../devices/device-model.js';
export { RegisterFile } from '../devices/register-file.js';
export type { InterruptHandler } from '../devices/pci-function.js';
