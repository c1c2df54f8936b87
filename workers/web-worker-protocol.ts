import type { WorkerTask } from './tasks.js';
import type { DmaWorkerData } from './worker-runtime.js';

/**
 * Messages between the page's pool (web-worker-pool.ts) and a DMA Web Worker
 * (dma-worker.browser.ts). The shared buffers arrive once, in `init`; then each task is one
 * message there and one back, as a piscina task is in Node.
 */
export type ToWorker =
  | {
      kind: 'init';
      /** The id the pool gives this worker (Web Workers have no thread id): its worker-slot owner id. */
      threadId: number;
      /** The Web Lock the worker holds for as long as it lives, or null where there are no Web Locks. */
      lockName: string | null;
      data: DmaWorkerData;
    }
  | { kind: 'task'; id: number; task: WorkerTask };

export type FromWorker =
  /** Initialised: it holds its lock and its worker slot, and takes tasks. */
  | { kind: 'ready' }
  /** Initialisation failed (no free worker slot, say). */
  | { kind: 'failed'; error: unknown }
  | { kind: 'result'; id: number; ok: true; value: unknown }
  | { kind: 'result'; id: number; ok: false; error: unknown }
  /** A promise was rejected with nobody to catch it: in Node that ends the thread, and here too. */
  | { kind: 'fatal'; error: unknown };
