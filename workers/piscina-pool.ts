import { Piscina } from 'piscina';
import type { DmaWorkerPool, DmaWorkerPoolOptions } from './pool.js';
import type { WorkerTask } from './tasks.js';
import type { DmaWorkerData } from './worker-runtime.js';

/** The pool in Node: piscina, fixed size, workers kept alive between tasks. */
export class PiscinaPool implements DmaWorkerPool {
  readonly size: number;
  readonly #piscina: Piscina;

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
