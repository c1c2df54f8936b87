import { isMainThread } from 'node:worker_threads';

/**
 * Loaded in a DMA worker with platform.runInWorker(url, 'exitWorker'): ends that worker's
 * thread, as a crash would. Shipped in dist/bin/ next to viommu-stress, whose soak kills
 * workers with it (the platform frees the dead worker's slot and ring, the pool starts
 * another). In a worker thread process.exit() ends the thread, not the process.
 */
export function exitWorker(): never {
  if (isMainThread) throw new Error('exitWorker ends a DMA worker thread: call it through platform.runInWorker');
  process.exit(70);
}
