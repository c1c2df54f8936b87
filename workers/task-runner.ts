import { UnsupportedUpstreamTransaction } from '../base/enums.js';
import { DMA_BLOCKED, DMA_OK } from '../iommu/data-plane/translation-engine.js';
import { DeviceRunner } from './device-runner.js';
import { loadModule } from './environment.js';
import type { DmaResult, WorkerTask } from './tasks.js';
import { type DmaWorkerData, WorkerRuntime } from './worker-runtime.js';

/**
 * The body of a DMA worker, whatever starts it (piscina in Node, a Web Worker in a page): the
 * shared buffers arrive once, in `data`; after that every task translates and copies on its
 * own, with this thread's IOTLB, and reports faults through this thread's fault ring.
 */
export function createTaskRunner(data: DmaWorkerData, threadId: number): (task: WorkerTask) => Promise<unknown> {
  const runtime = WorkerRuntime.inWorker(data, threadId);
  return runTasksWith(runtime, new DeviceRunner(runtime, runtime.devices, data.deviceModelUrls));
}

/** The task runner of `runtime`, whatever thread it belongs to (workers/inline-pool.ts runs one on the platform's thread). */
export function runTasksWith(runtime: WorkerRuntime, devices: DeviceRunner): (task: WorkerTask) => Promise<unknown> {
  const modules = new Map<string, Record<string, unknown>>();

  function runDma(device: number, address: number, length: number, write: Uint8Array | undefined): DmaResult {
    const port = runtime.portFor(device);
    let data: Uint8Array | undefined;
    let result: number;
    if (write !== undefined) {
      result = port.write(address, write, 0, write.length);
    } else {
      data = new Uint8Array(length);
      result = port.read(address, length, data, 0);
    }
    if (result === DMA_OK) return data === undefined ? { ok: true } : { ok: true, data };
    if (result === DMA_BLOCKED) return { ok: false, faultType: UnsupportedUpstreamTransaction, faultAddress: address, blocked: true };
    return { ok: false, faultType: result, faultAddress: runtime.engine.faultAddress, blocked: false };
  }

  return async function runTask(task: WorkerTask): Promise<unknown> {
    runtime.engine.beginTask();
    try {
      switch (task.kind) {
        case 'dma':
          return runDma(task.device, task.address, task.length, task.write);
        case 'dma-batch':
          return task.requests.map((request) => runDma(task.device, request.address, request.length, request.write));
        case 'device-work':
          return await devices.run(task.device);
        case 'module': {
          const module = modules.get(task.url) ?? (await loadModule(task.url));
          modules.set(task.url, module);
          const fn = module[task.export];
          if (typeof fn !== 'function') throw new TypeError(`${task.url} has no exported function '${task.export}'`);
          return await fn(runtime, task.args);
        }
      }
    } finally {
      runtime.engine.endTask();
    }
  };
}
