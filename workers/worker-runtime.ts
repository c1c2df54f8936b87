import { DmaPort } from '../iommu/data-plane/dma-port.js';
import type { IotlbOptions } from '../iommu/data-plane/iotlb.js';
import { TranslationEngine } from '../iommu/data-plane/translation-engine.js';
import { attachSharedState, type SharedBuffers, type SharedState } from '../iommu/shared-memory/shared-state.js';
import { attachDeviceState, type DeviceBuffers, type DeviceSharedState } from '../hardware/device-shared-state.js';

/** What every DMA worker receives once, in piscina's workerData. */
export interface DmaWorkerData {
  shared: SharedBuffers;
  devices: DeviceBuffers;
  iotlb: IotlbOptions;
  /** Module URLs of the platform's custom device models, in model-index order after the built-in ones. */
  deviceModelUrls: string[];
}

/**
 * Everything a device model needs inside a worker thread: the shared state, this thread's
 * translation engine (with its IOTLB and fault ring) and one DMA port per device. Built once
 * per thread; custom worker modules (platform.runInWorker) receive it as their first argument.
 */
export class WorkerRuntime {
  /** @internal The IOMMU's shared state. */
  readonly state: SharedState;
  /** @internal The device models' shared state: register files, device memory arena, control table. */
  readonly devices: DeviceSharedState;
  /** @internal This thread's translation engine (its IOTLB and fault ring). */
  readonly engine: TranslationEngine;
  /** Guest RAM as bytes (the CPU's view; devices go through ports). */
  readonly ram: Uint8Array;
  readonly threadId: number;
  readonly #ports: DmaPort[] = [];

  /** @internal Built by the DMA worker itself. */
  constructor(data: DmaWorkerData, threadId: number) {
    this.state = attachSharedState(data.shared);
    this.devices = attachDeviceState(data.devices);
    const slot = this.state.workerSlots.claim(threadId);
    if (slot < 0) throw new Error(`DMA worker ${threadId}: no free worker slot`);
    this.threadId = threadId;
    this.engine = new TranslationEngine(this.state, slot, data.iotlb);
    this.ram = new Uint8Array(this.state.guestMemory);
  }

  /** The DMA port of the PCI function in context slot `device` (created on first use). */
  portFor(device: number): DmaPort {
    return (this.#ports[device] ??= new DmaPort(this.engine, this.ram, this.state.invalidations.header, device));
  }
}
