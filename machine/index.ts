/**
 * viommu: an emulated IOMMU for JavaScript virtual machines.
 *
 * The package root: createPlatform() and everything a guest driver, an embedder or a device
 * model needs to name (status codes, enums, structure types).
 */
export { createPlatform, Platform, type DeviceErrorHandler, type DmaRequest, type DmaResult, type WorkerStats } from './platform.js';
export { restorePlatform, type RestoreOptions, type RestoredPlatform } from './snapshot/restore.js';
export type { RebindNeeded } from './snapshot/restore-iommu.js';
export { SNAPSHOT_VERSION } from './snapshot/snapshot-format.js';
export type { DataPlane, ModuleUrl, PlatformOptions, ResolvedPlatformOptions } from './platform-options.js';
export type {
  DMA_IOMMU_INTERFACE_EX,
  DMA_IOMMU_INTERFACE_V2,
  V2RoutineName,
  IOMMU_DOMAIN_CREATE_EX,
  IOMMU_DOMAIN_DELETE,
  IOMMU_DOMAIN_ATTACH_DEVICE_EX,
  IOMMU_DOMAIN_DETACH_DEVICE_EX,
  IOMMU_FLUSH_DOMAIN,
  IOMMU_FLUSH_DOMAIN_VA_LIST,
  IOMMU_QUERY_INPUT_MAPPINGS,
  IOMMU_MAP_LOGICAL_RANGE_EX,
  IOMMU_UNMAP_LOGICAL_RANGE,
  IOMMU_MAP_IDENTITY_RANGE_EX,
  IOMMU_UNMAP_IDENTITY_RANGE_EX,
  IOMMU_SET_DEVICE_FAULT_REPORTING_EX,
  IOMMU_DOMAIN_CONFIGURE,
  IOMMU_DEVICE_QUERY_DOMAIN_TYPES,
  IOMMU_REGISTER_INTERFACE_STATE_CHANGE_CALLBACK,
  IOMMU_UNREGISTER_INTERFACE_STATE_CHANGE_CALLBACK,
  IOMMU_RESERVE_LOGICAL_ADDRESS_RANGE,
  IOMMU_FREE_RESERVED_LOGICAL_ADDRESS_RANGE,
  IOMMU_MAP_RESERVED_LOGICAL_RANGE,
  IOMMU_UNMAP_RESERVED_LOGICAL_RANGE,
  IOMMU_DEVICE_CREATE,
  IOMMU_DEVICE_DELETE,
} from '../iommu/interface-table.js';
export { V2_ROUTINE_NAMES } from '../iommu/interface-table.js';
export * from '../base/ntstatus.js';
export * from '../base/enums.js';
export type * from '../iommu/types.js';
export type { FaultStats } from '../iommu/control/fault-dispatcher.js';
export type { DomainSummary, TranslationView } from '../iommu/control/inspection.js';
export type { PhysicalMemory, Requester, RequesterBus } from '../hardware/substrate.js';
export type { DmaProtectionPolicy, Architecture } from '../iommu/control/dma-protection-policy.js';
export { availableDomainTypes } from '../iommu/control/dma-protection-policy.js';
export { GuestMemory } from '../hardware/guest-memory.js';
export type { BufferAllocator } from '../base/buffers.js';
export type { PciBus } from '../hardware/pci-bus.js';
export { PciFunction, type PciFunctionOptions } from '../hardware/pci-function.js';
export * from '../hardware/pci-config-space.js';
export { Errors } from '../base/errors.js';
export { PAGE_SIZE } from '../base/numbers.js';
export type { WorkerRuntime } from '../workers/worker-runtime.js';
export { type DmaPort, DMA_OK, DMA_BLOCKED } from '../iommu/data-plane/dma-port.js';
export type { DeviceWriteObserver } from '../iommu/data-plane/observed-dma-port.js';
export { DriverBase, DriverError, type MappedBuffer } from '../devices/drivers/driver-base.js';
export type { DriverHost } from '../devices/drivers/driver-host.js';
export { CopyEngineDriver, type CopyCompletion, type CopyEngineDriverOptions } from '../devices/drivers/copy-engine-driver.js';
export { COPY_ENGINE } from '../devices/models/copy-engine.js';
export {
  NvmeDriver,
  NvmeError,
  type NvmeCompletion,
  type NvmeCommand,
  type NvmeDriverOptions,
  type NvmeIdentity,
  type NvmeNamespaceIdentity,
} from '../devices/drivers/nvme-driver.js';
export { NVME } from '../devices/models/nvme.js';
export { NicDriver, type NicDriverOptions, type NicSendOptions, type NicStats } from '../devices/drivers/nic-driver.js';
export { NIC } from '../devices/models/nic.js';
export type { DeviceModel, DeviceWorkContext } from '../devices/device-model.js';
export type { FunctionModel } from '../hardware/function-model.js';
export { RegisterFile } from '../hardware/register-file.js';
export type { InterruptHandler } from '../hardware/pci-function.js';
