import { type BufferAllocator, localBuffer, sharedBuffer } from '../base/buffers.js';
import type { DeviceModel } from '../devices/device-model.js';
import type { DeviceBuffers, DeviceSharedState } from '../hardware/device-shared-state.js';
import { type SharedState, sharedBuffersOf } from '../iommu/shared-memory/shared-state.js';
import { createDmaWorkerPool } from '../workers/environment.js';
import { InlinePool } from '../workers/inline-pool.js';
import type { DmaWorkerPool } from '../workers/pool.js';
import type { ResolvedPlatformOptions } from './platform-options.js';

/**
 * The platform's data plane, as options.dataPlane says: DMA worker threads over
 * SharedArrayBuffers (the pool of workers/environment.ts), or the platform's own thread over
 * plain ArrayBuffers (workers/inline-pool.ts), where nothing needs to be shared.
 */

/** Where the platform's buffers come from. */
export function bufferAllocatorOf(options: ResolvedPlatformOptions): BufferAllocator {
  return options.dataPlane === 'main-thread' ? localBuffer : sharedBuffer;
}

export interface DataPlaneParts {
  shared: SharedState;
  deviceBuffers: DeviceBuffers;
  devices: DeviceSharedState;
  customModels: readonly DeviceModel[];
  /** Guest RAM moved (main-thread only): the platform's CPU view follows. */
  rebind: (bytes: Uint8Array) => void;
  /** A worker thread ended (workers only). */
  onWorkerGone: (threadId: number) => void;
  /** An error of the pool not tied to a task (workers only). */
  onError: (error: unknown) => void;
}

/** The pool that runs tasks (null for a platform without workers), and the inline pool when the data plane is this thread. */
export function createDataPlane(options: ResolvedPlatformOptions, parts: DataPlaneParts): { pool: DmaWorkerPool | null; inline: InlinePool | null } {
  const iotlb = { entries: options.iotlbEntries, ways: options.iotlbWays };
  if (options.dataPlane === 'main-thread') {
    const inline = new InlinePool({
      state: parts.shared,
      devices: parts.devices,
      iotlb,
      customModels: parts.customModels,
      onWrite: options.onDeviceWrite,
      rebind: parts.rebind,
    });
    return { pool: inline, inline };
  }
  if (options.workers === 0) return { pool: null, inline: null };
  const pool = createDmaWorkerPool({
    workers: options.workers,
    workerUrl: new URL(options.workerUrl),
    shared: sharedBuffersOf(parts.shared),
    devices: parts.deviceBuffers,
    deviceModelUrls: options.deviceModels,
    iotlb,
    onWorkerGone: parts.onWorkerGone,
    onError: parts.onError,
  });
  return { pool, inline: null };
}
