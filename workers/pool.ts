import type { IotlbOptions } from '../iommu/data-plane/iotlb.js';
import type { SharedBuffers } from '../iommu/shared-memory/shared-state.js';
import type { DeviceBuffers } from '../hardware/device-shared-state.js';
import type { WorkerTask } from './tasks.js';

/**
 * The data plane's worker pool, whatever runs it: piscina's worker threads in Node
 * (piscina-pool.ts). Every worker gets the shared buffers once, at start; a task is one
 * message there and one back (a DMA, a device model's batch, a custom module's function).
 * A worker that dies fails only the task it was running: onWorkerGone tells the platform,
 * which frees its slot and fault ring for the worker that replaces it.
 */
export interface DmaWorkerPool {
  /** Workers the pool keeps running. */
  readonly size: number;
  run<Result>(task: WorkerTask): Promise<Result>;
  /** Thread ids of the workers running now. */
  readonly threadIds: readonly number[];
  /** Stops every worker; tasks in flight are abandoned. */
  close(): Promise<void>;
}

export interface DmaWorkerPoolOptions {
  workers: number;
  /** The DMA worker's module (workers/dma-worker). */
  workerUrl: URL;
  shared: SharedBuffers;
  devices: DeviceBuffers;
  deviceModelUrls: string[];
  iotlb: IotlbOptions;
  /** A worker ended (crash or shutdown): its thread id. */
  onWorkerGone: (threadId: number) => void;
  /** An error not tied to a task (a worker that failed to start, say). */
  onError: (error: unknown) => void;
}
