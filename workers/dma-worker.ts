import { threadId, workerData } from 'node:worker_threads';
import { DmaPort } from '../devices/dma-port.js';
import { UnsupportedUpstreamTransaction } from '../plugin/enums.js';
import { DMA_BLOCKED, DMA_OK, TranslationEngine } from '../plugin/data-plane/translation-engine.js';
import { attachSharedState, type SharedBuffers } from '../plugin/shared/shared-state.js';
import type { IotlbOptions } from '../plugin/data-plane/iotlb.js';
import type { DmaTaskResult, WorkerTask } from './tasks.js';

/**
 * A DMA worker: piscina loads this module once per thread. The shared buffers arrive once,
 * in workerData; after that every task translates and copies on its own, with this thread's
 * IOTLB, and reports faults through this thread's fault ring.
 */
interface DmaWorkerData {
  shared: SharedBuffers;
  iotlb: IotlbOptions;
}

const data = workerData as DmaWorkerData;
const state = attachSharedState(data.shared);
const slot = state.workerSlots.claim(threadId);
if (slot < 0) throw new Error(`DMA worker ${threadId}: no free worker slot (the pool outgrew options.workerSlots)`);
const engine = new TranslationEngine(state, slot, data.iotlb);
const ram = new Uint8Array(state.guestMemory);
const ports: DmaPort[] = [];

function portFor(device: number): DmaPort {
  return (ports[device] ??= new DmaPort(engine, ram, state.invalidations.header, device));
}

export default function runTask(task: WorkerTask): DmaTaskResult | DmaTaskResult[] {
  engine.beginTask();
  try {
    switch (task.kind) {
      case 'dma':
        return runDma(task.device, task.address, task.length, task.write);
      case 'dma-batch':
        return task.requests.map((request) => runDma(task.device, request.address, request.length, request.write));
    }
  } finally {
    engine.endTask();
  }
}

function runDma(device: number, address: number, length: number, write: Uint8Array | undefined): DmaTaskResult {
  const port = portFor(device);
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
  return { ok: false, faultType: result, faultAddress: engine.faultAddress, blocked: false };
}
