import type { PciFunction } from '../../hardware/pci-function.js';
import type { DEVICE_FAULT_CONFIGURATION, IOMMU_DMA_DEVICE, IOMMU_INTERFACE_STATE_CHANGE_CALLBACK } from '../types.js';
import type { DomainState } from './domain-state.js';

/** A state-change registration: at most one per DMA device. */
export interface StateChangeRegistration {
  readonly callback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK;
  readonly context: unknown;
  /** The mask last reported, so that only real changes are reported. */
  lastReported: number;
}

/** The control plane's record of one DMA device (an IOMMU_DMA_DEVICE handle's hidden state). */
export class DmaDeviceState {
  /** False once the handle was deleted or freed. */
  live = true;
  readonly handle: IOMMU_DMA_DEVICE;
  readonly pdo: PciFunction;
  domain: DomainState | null = null;
  registration: StateChangeRegistration | null = null;
  faultConfig: DEVICE_FAULT_CONFIGURATION | null = null;

  constructor(handle: IOMMU_DMA_DEVICE, pdo: PciFunction) {
    this.handle = handle;
    this.pdo = pdo;
  }
}
