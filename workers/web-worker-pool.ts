import { Errors } from '../base/errors.js';
import type { DmaWorkerPool, DmaWorkerPoolOptions } from './pool.js';
import type { WorkerTask } from './tasks.js';
import { lockManager, uniqueName, type WebWorker, type WorkerErrorEvent, workerConstructor } from './web-platform.js';
import type { FromWorker, ToWorker } from './web-worker-protocol.js';

interface PendingTask {
  id: number;
  task: WorkerTask;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

interface PoolWorker {
  /** Given by the pool (Web Workers have none): the worker's slot owner id, never reused. */
  readonly threadId: number;
  readonly worker: WebWorker;
  readonly lockName: string | null;
  /** Aborts the page's request for the worker's lock once the pool lets the worker go itself. */
  readonly watch: AbortController;
  state: 'starting' | 'ready' | 'gone';
  /** The task it runs now (one at a time, as piscina runs them). */
  task: PendingTask | null;
}

/**
 * The pool in a web page: module Web Workers (dma-worker.browser.ts), fixed size, each given
 * the shared buffers once and then one task at a time, first come first served.
 *
 * A worker that dies harms nothing else, as in Node. A page learns of a worker's end in two
 * ways: an uncaught error in it (its `error` event, or a `fatal` message for a rejection
 * nobody caught: the pool then ends it, as Node ends such a thread), and its Web Lock. Every
 * worker holds a lock of its own name for as long as it lives; the pool asks for the same
 * lock, and the browser grants it only once the worker is gone, however it went
 * (worker.terminate() from the page, close() from inside, a crash). Either way the task it was
 * running fails, onWorkerGone lets the platform drain its fault ring and free its slot, and a
 * successor starts (and claims that slot). A worker that fails before it is ready (a script
 * that does not load) is not replaced; once none is left, tasks fail with that error.
 */
export class WebWorkerPool implements DmaWorkerPool {
  readonly size: number;
  readonly #options: DmaWorkerPoolOptions;
  readonly #lockPrefix: string;
  #workers: PoolWorker[] = [];
  #queue: PendingTask[] = [];
  #nextThreadId = 1;
  #nextTaskId = 1;
  /** Where the next dispatch starts looking for an idle worker (round robin). */
  #cursor = 0;
  /** Why the last worker to fail did not start, once none is left. */
  #startFailure: unknown = null;
  #closed = false;

  constructor(options: DmaWorkerPoolOptions) {
    this.size = options.workers;
    this.#options = options;
    this.#lockPrefix = uniqueName('viommu-dma-worker');
    for (let i = 0; i < options.workers; i++) this.#start();
  }

  run<Result>(task: WorkerTask): Promise<Result> {
    if (this.#closed) return Promise.reject(Errors.WorkerPoolClosed());
    if (this.#workers.length === 0 && this.#startFailure !== null) return Promise.reject(this.#startFailure);
    return new Promise<Result>((resolve, reject) => {
      this.#queue.push({ id: this.#nextTaskId++, task, resolve: resolve as (value: unknown) => void, reject });
      this.#dispatch();
    });
  }

  get threadIds(): number[] {
    return this.#workers.map((entry) => entry.threadId);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const error = Errors.WorkerPoolClosed();
    for (const entry of this.#workers) {
      entry.state = 'gone';
      entry.watch.abort();
      entry.worker.terminate();
      entry.task?.reject(error);
      entry.task = null;
    }
    this.#workers = [];
    for (const pending of this.#queue.splice(0)) pending.reject(error);
  }

  #start(): void {
    const threadId = this.#nextThreadId++;
    const locks = lockManager();
    let worker: WebWorker;
    try {
      const Worker = workerConstructor();
      worker = new Worker(this.#options.workerUrl, { type: 'module', name: `viommu DMA worker ${threadId}` });
    } catch (error) {
      this.#options.onError(error);
      this.#startFailed(error);
      return;
    }
    const entry: PoolWorker = {
      threadId,
      worker,
      lockName: locks === undefined ? null : `${this.#lockPrefix}/${threadId}`,
      watch: new AbortController(),
      state: 'starting',
      task: null,
    };
    this.#workers.push(entry);
    worker.addEventListener('message', (event) => this.#received(entry, event.data as FromWorker));
    worker.addEventListener('error', (event) => this.#crashed(entry, event));
    worker.addEventListener('messageerror', () => {
      const pending = entry.task;
      if (pending === null) return;
      entry.task = null;
      pending.reject(Errors.WorkerTaskFailed(pending.task.kind, 'its result could not be read on this side'));
      this.#dispatch();
    });
    const init: ToWorker = {
      kind: 'init',
      threadId,
      lockName: entry.lockName,
      data: { shared: this.#options.shared, devices: this.#options.devices, iotlb: this.#options.iotlb, deviceModelUrls: this.#options.deviceModelUrls },
    };
    worker.postMessage(init);
  }

  #received(entry: PoolWorker, message: FromWorker): void {
    if (entry.state === 'gone') return;
    switch (message.kind) {
      case 'ready':
        entry.state = 'ready';
        this.#startFailure = null;
        this.#watch(entry);
        this.#dispatch();
        return;
      case 'failed':
        this.#lost(entry, Errors.WorkerGone(entry.threadId, `could not start: ${messageOf(message.error)}`));
        return;
      case 'fatal':
        this.#lost(entry, message.error);
        return;
      case 'result': {
        const pending = entry.task;
        if (pending === null || pending.id !== message.id) return;
        entry.task = null;
        if (message.ok) pending.resolve(message.value);
        else pending.reject(message.error);
        this.#dispatch();
        return;
      }
    }
  }

  /** An uncaught error in the worker, or a script that did not load. */
  #crashed(entry: PoolWorker, event: WorkerErrorEvent): void {
    // Reported here, as the task's failure or through onError, rather than as the page's own error.
    event.preventDefault();
    if (entry.state === 'gone') return;
    let error: unknown;
    if (event.message === undefined) {
      error = Errors.WorkerGone(entry.threadId, `could not start: ${this.#options.workerUrl.href} did not load as a module worker`);
    } else {
      const where = event.filename ? ` (${event.filename}:${event.lineno ?? 0})` : '';
      error = Errors.WorkerGone(entry.threadId, `failed: ${event.message}${where}`);
    }
    this.#lost(entry, error);
  }

  /** Asks for the worker's lock: granted once the worker no longer holds it, that is, once it is gone. */
  #watch(entry: PoolWorker): void {
    const locks = lockManager();
    if (locks === undefined || entry.lockName === null) return;
    locks
      .request(entry.lockName, { signal: entry.watch.signal }, () => {
        this.#lost(entry, Errors.WorkerGone(entry.threadId, 'ended (terminated, or it closed itself)'));
      })
      .catch((error: unknown) => {
        // Aborted: the pool let the worker go itself. Anything else is news.
        if (!entry.watch.signal.aborted) this.#options.onError(error);
      });
  }

  #lost(entry: PoolWorker, error: unknown): void {
    if (entry.state === 'gone') return;
    const wasReady = entry.state === 'ready';
    entry.state = 'gone';
    entry.watch.abort();
    entry.worker.terminate();
    this.#workers = this.#workers.filter((other) => other !== entry);
    // First the platform delivers what the worker reported and frees its slot; then the
    // successor starts, and claims that slot.
    this.#options.onWorkerGone(entry.threadId);
    const pending = entry.task;
    entry.task = null;
    if (pending !== null) pending.reject(error);
    else this.#options.onError(error);
    if (this.#closed) return;
    if (wasReady) this.#start();
    else this.#startFailed(error);
    this.#dispatch();
  }

  /** A worker never got going: replacing it would fail the same way. With none left, tasks fail. */
  #startFailed(error: unknown): void {
    if (this.#workers.length > 0) return;
    this.#startFailure = error;
    for (const pending of this.#queue.splice(0)) pending.reject(error);
  }

  #dispatch(): void {
    const workers = this.#workers;
    for (let looked = 0; looked < workers.length && this.#queue.length > 0; looked++) {
      const entry = workers[(this.#cursor + looked) % workers.length]!;
      if (entry.state !== 'ready' || entry.task !== null) continue;
      const pending = this.#queue.shift()!;
      entry.task = pending;
      this.#cursor = (this.#cursor + looked + 1) % workers.length;
      looked = -1;
      const message: ToWorker = { kind: 'task', id: pending.id, task: pending.task };
      try {
        entry.worker.postMessage(message);
      } catch (error) {
        // Arguments that cannot be cloned (a DataCloneError): that task fails, nothing else.
        entry.task = null;
        pending.reject(error);
      }
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
