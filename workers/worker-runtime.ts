import { DmaPort } from '../iommu/data-plane/dma-port.js';
import { type DeviceWriteObserver, ObservedDmaPort } from '../iommu/data-plane/observed-dma-port.js';
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
 * Everything a device model needs on the thread that runs it: the shared state, this thread's
 * translation engine (with its IOTLB and fault ring) and one DMA port per device. Built once
 * per thread (a DMA worker, or the platform's own thread when its data plane runs there);
 * custom worker modules (platform.runInWorker) receive it as their first argument.
 */
export class WorkerRuntime {
  /** @internal The IOMMU's shared state. */
  readonly state: SharedState;
  /** @internal The device models' shared state: register files, device memory arena, control table. */
  readonly devices: DeviceSharedState;
  /** @internal This thread's translation engine (its IOTLB and fault ring). */
  readonly engine: TranslationEngine;
  readonly threadId: number;
  readonly #ports: DmaPort[] = [];
  readonly #onWrite: DeviceWriteObserver | null;
  #ram: Uint8Array;

  /** @internal The runtime of a DMA worker (built by the worker itself): it claims a worker slot, whose fault ring its engine writes. */
  static inWorker(data: DmaWorkerData, threadId: number): WorkerRuntime {
    const state = attachSharedState(data.shared);
    const slot = state.workerSlots.claim(threadId);
    if (slot < 0) throw new Error(`DMA worker ${threadId}: no free worker slot`);
    return new WorkerRuntime(state, attachDeviceState(data.devices), new TranslationEngine(state, slot, data.iotlb), threadId, null);
  }

  /**
   * @internal The runtime of the platform's own thread, over the platform's own state: its engine
   * writes the main thread's fault ring (the last one, which no worker slot owns) and need not
   * guard page-table reclamation, since the control plane runs on this same thread and never
   * retires a table in the middle of a walk. `onWrite` hears of every device write to guest RAM.
   */
  static onMainThread(state: SharedState, devices: DeviceSharedState, iotlb: IotlbOptions, onWrite: DeviceWriteObserver | null): WorkerRuntime {
    const engine = new TranslationEngine(state, state.faultRings.ringCount - 1, iotlb, false);
    return new WorkerRuntime(state, devices, engine, 0, onWrite);
  }

  private constructor(state: SharedState, devices: DeviceSharedState, engine: TranslationEngine, threadId: number, onWrite: DeviceWriteObserver | null) {
    this.state = state;
    this.devices = devices;
    this.engine = engine;
    this.threadId = threadId;
    this.#onWrite = onWrite;
    this.#ram = state.guestMemory;
  }

  /** Guest RAM as bytes (the CPU's view; devices go through ports). */
  get ram(): Uint8Array {
    return this.#ram;
  }

  /** The DMA port of the PCI function in context slot `device` (created on first use). */
  portFor(device: number): DmaPort {
    const header = this.state.invalidations.header;
    return (this.#ports[device] ??=
      this.#onWrite === null
        ? new DmaPort(this.engine, this.#ram, header, device)
        : new ObservedDmaPort(this.engine, this.#ram, header, device, this.#onWrite));
  }

  /** @internal Sees guest RAM through `ram` from now on (same memory, new view: see GuestMemory.rebind). */
  useGuestMemory(ram: Uint8Array): void {
    this.#ram = ram;
    this.state.guestMemory = ram;
    this.engine.useGuestMemory(ram);
    for (const port of this.#ports) port?.useGuestMemory(ram);
  }
}
