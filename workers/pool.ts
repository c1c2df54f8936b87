import { Piscina } from 'piscina';
import type { IotlbOptions } from '../iommu/data-plane/iotlb.js';
import type { SharedBuffers } from '../iommu/shared-memory/shared-state.js';
import type { DeviceBuffers } from '../hardware/device-shared-state.js';
import type { WorkerTask } from './tasks.js';
import type { DmaWorkerData } from './worker-runtime.js';

declare const __VIOMMU_BUNDLE_ROOT__: string | undefined;

/**
 * Where the worker entry lives. From the TypeScript sources (tests run through tsx) it is the
 * .ts file next to this one. In the published bundles esbuild defines __VIOMMU_BUNDLE_ROOT__
 * as the path from the bundle that contains this code to dist/, where the worker bundle is.
 */
export function workerUrl(): URL {
  if (typeof __VIOMMU_BUNDLE_ROOT__ === 'string') return new URL(`${__VIOMMU_BUNDLE_ROOT__}workers/dma-worker.js`, import.meta.url);
  return new URL('./dma-worker.ts', import.meta.url);
}

export interface DmaWorkerPoolOptions {
  workers: number;
  shared: SharedBuffers;
  devices: DeviceBuffers;
  deviceModelUrls: string[];
  iotlb: IotlbOptions;
  /** A worker thread ended (crash or shutdown): its threadId. */
  onWorkerGone: (threadId: number) => void;
  /** An error not tied to a task (piscina's 'error' event). */
  onError: (error: unknown) => void;
}

/** The piscina pool that runs device work: fixed size, workers kept alive between tasks. */
export class DmaWorkerPool {
  readonly size: number;
  readonly #piscina: Piscina;

  constructor(options: DmaWorkerPoolOptions) {
    this.size = options.workers;
    this.#piscina = new Piscina({
      filename: workerUrl().href,
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Infinity,
      workerData: { shared: options.shared, devices: options.devices, iotlb: options.iotlb, deviceModelUrls: options.deviceModelUrls } satisfies DmaWorkerData,
    });
    // Without a listener piscina's 'error' event would crash the process.
    this.#piscina.on('error', options.onError);
    this.#piscina.on('workerDestroy', (worker: { threadId: number }) => options.onWorkerGone(worker.threadId));
  }

  run<Result>(task: WorkerTask): Promise<Result> {
    return this.#piscina.run(task) as Promise<Result>;
  }

  get threadIds(): number[] {
    return this.#piscina.threads.map((thread) => thread.threadId);
  }

  async close(): Promise<void> {
    await this.#piscina.destroy();
  }
}
