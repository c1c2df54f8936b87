import type { NTSTATUS } from '../../base/ntstatus.js';
import type { GuestMemory } from '../../hardware/guest-memory.js';
import type { Architecture } from '../../iommu/control/dma-protection-policy.js';
import type { DMA_IOMMU_INTERFACE_EX } from '../../iommu/interface-table.js';
import type { Out } from '../../iommu/types.js';

/**
 * What a driver needs of the machine it runs on, and all it may use: the IOMMU's interface
 * (as a Windows driver gets it), guest memory (as the driver's kernel gives it pages and
 * MDLs), the architecture, and a way to wait until the device models are idle. A Platform
 * is one; so is anything else that offers these.
 */
export interface DriverHost {
  readonly arch: Architecture;
  readonly memory: GuestMemory;
  IoGetIommuInterfaceEx(Version: number, Flags: number, InterfaceOut: Out<DMA_IOMMU_INTERFACE_EX>): NTSTATUS;
  /** Resolves once no device model has work in flight. */
  devicesIdle(): Promise<void>;
}
