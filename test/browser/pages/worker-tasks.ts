import type { WorkerRuntime } from 'viommu';

/** Modules the worker-death probe runs in a DMA Web Worker (platform.runInWorker). */

/**
 * DMA at an IOVA nothing maps (a fault in this worker's ring), say which worker this is in
 * the guest-memory word at `flag`, then stay busy until ended from outside.
 */
export function faultThenSpin(runtime: WorkerRuntime, args: { device: number; address: number; flag: number; milliseconds: number }): number {
  runtime.portFor(args.device).readU32(args.address);
  Atomics.store(new Int32Array(runtime.ram.buffer), args.flag / 4, runtime.threadId);
  const until = performance.now() + args.milliseconds;
  let spins = 0;
  while (performance.now() < until) spins++;
  return spins;
}

/** Leaves an error behind that nobody catches, once this task is over; returns this worker's id. */
export function throwLater(runtime: WorkerRuntime): number {
  setTimeout(() => {
    throw new Error('uncaught in a DMA worker');
  }, 20);
  return runtime.threadId;
}
