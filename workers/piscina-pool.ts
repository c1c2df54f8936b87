import { Piscina } from 'piscina';
import type { DmaWorkerPool, DmaWorkerPoolOptions } from './pool.js';
import type { WorkerTask } from './tasks.js';
import type { DmaWorkerData } from './worker-runtime.js';

/** The pool in Node: piscina, fixed size, workers kept alive between tasks. */
export class PiscinaPool implements DmaWorkerPool {
  readonly size: number;
  readonly #piscina: Piscina;
  /** Thread ids of the workers started and not yet reported gone. */
  readonly #started = new Set<number>();

  constructor(options: DmaWorkerPoolOptions) {
    this.size = options.workers;
    this.#piscina = new Piscina({
      filename: options.workerUrl.href,
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Infinity,
      workerData: { shared: options.shared, devices: options.devices, iotlb: options.iotlb, deviceModelUrls: options.deviceModelUrls } satisfies DmaWorkerData,
    });
    // Without a listener piscina's 'error' event would crash the process.
    this.#piscina.on('error', options.onError);
    // piscina's handle of a worker reads its thread id live, and a thread that has exited has
    // none (-1): remember each worker's id at start, and call gone those no longer running.
    this.#piscina.on('workerCreate', (worker: { id: number }) => this.#started.add(worker.id));
    this.#piscina.on('workerDestroy', () => {
      const running = new Set(this.threadIds);
      for (const id of this.#started) {
        if (running.has(id)) continue;
        this.#started.delete(id);
        options.onWorkerGone(id);
      }
    });
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
