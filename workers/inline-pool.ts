import { Errors } from '../base/errors.js';
import type { DeviceModel } from '../devices/device-model.js';
import type { DeviceSharedState } from '../hardware/device-shared-state.js';
import type { DeviceWriteObserver } from '../iommu/data-plane/observed-dma-port.js';
import type { IotlbOptions } from '../iommu/data-plane/iotlb.js';
import type { SharedState } from '../iommu/shared-memory/shared-state.js';
import { DeviceRunner, type DeviceWorkResult } from './device-runner.js';
import type { DmaWorkerPool } from './pool.js';
import { runTasksWith } from './task-runner.js';
import type { WorkerTask } from './tasks.js';
import { WorkerRuntime } from './worker-runtime.js';

export interface InlinePoolOptions {
  /** The platform's own state (its buffers need not be shared). */
  state: SharedState;
  devices: DeviceSharedState;
  iotlb: IotlbOptions;
  /** The platform's custom device models, loaded already, in model-index order after the built-in ones. */
  customModels: readonly DeviceModel[];
  /** Told of every device write to guest RAM (options.onDeviceWrite), or null. */
  onWrite: DeviceWriteObserver | null;
  /** Makes the platform see guest RAM through a new view (GuestMemory.rebind); the pool then uses it too. */
  rebind: (bytes: Uint8Array) => void;
}

/**
 * The data plane on the platform's own thread (options.dataPlane 'main-thread'), for
 * emulators whose guest RAM no worker can reach (v86's WebAssembly memory) or that run
 * where workers cannot share memory (a page without cross-origin isolation). It is the DMA
 * worker's task runner, over the platform's own buffers, called directly: the same device
 * models, domains, IOTLB and fault path, with the main thread's fault ring. Device batches
 * run synchronously through runDeviceNow (the scheduler's runNow); tasks (dma(), dmaBatch(),
 * runInWorker()) run when they are submitted and settle like a worker's.
 */
export class InlinePool implements DmaWorkerPool {
  /** No worker threads. */
  readonly size = 0;
  readonly threadIds: readonly number[] = [];
  readonly runtime: WorkerRuntime;
  readonly #devices: DeviceRunner;
  readonly #run: (task: WorkerTask) => Promise<unknown>;
  readonly #rebind: (bytes: Uint8Array) => void;
  /** Where guest RAM is now, when it can move (follow()). */
  #memorySource: (() => Uint8Array) | null = null;
  #closed = false;

  constructor(options: InlinePoolOptions) {
    this.runtime = WorkerRuntime.onMainThread(options.state, options.devices, options.iotlb, options.onWrite);
    this.#devices = new DeviceRunner(this.runtime, options.devices, [], options.customModels);
    this.#run = runTasksWith(this.runtime, this.#devices);
    this.#rebind = (bytes) => {
      options.rebind(bytes);
      this.runtime.useGuestMemory(bytes);
    };
  }

  /**
   * Asks `source` where guest RAM is before every batch and task: an emulator whose
   * WebAssembly memory grows gets a new buffer each time, and the old one is detached. The
   * source should return the same view object until the RAM moves.
   */
  follow(source: () => Uint8Array): void {
    this.#memorySource = source;
    this.#refresh();
  }

  run<Result>(task: WorkerTask): Promise<Result> {
    if (this.#closed) return Promise.reject(Errors.PlatformClosed());
    this.#refresh();
    return this.#run(task) as Promise<Result>;
  }

  /** One batch of device `slot`'s work, now, on this thread. */
  runDeviceNow(slot: number): DeviceWorkResult {
    this.#refresh();
    const engine = this.runtime.engine;
    engine.beginTask();
    try {
      return this.#devices.runNow(slot);
    } finally {
      engine.endTask();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #refresh(): void {
    if (this.#memorySource === null) return;
    const bytes = this.#memorySource();
    if (bytes !== this.runtime.ram) this.#rebind(bytes);
  }
}
