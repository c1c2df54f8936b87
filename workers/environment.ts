import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { PiscinaPool } from './piscina-pool.js';
import type { DmaWorkerPool, DmaWorkerPoolOptions } from './pool.js';

/**
 * What the data plane needs from the JavaScript environment, in Node: the worker pool, how
 * many workers a machine runs by default, and how a module is loaded by URL. Everything
 * environment-specific of the package goes through this module.
 */

export function createDmaWorkerPool(options: DmaWorkerPoolOptions): DmaWorkerPool {
  return new PiscinaPool(options);
}

/** The number of workers when options.workers is not given: the machine's available parallelism. */
export function hardwareConcurrency(): number {
  return availableParallelism();
}

/**
 * Loads an ES module by URL (custom device models, runInWorker modules), the same way on the
 * main thread and in workers. TypeScript sources (tests and benchmarks run under tsx) go
 * through require(): in worker threads tsx hooks only the CommonJS loader, which is also how
 * piscina loads the worker itself. Everything else is a plain import.
 */
export async function loadModule(url: string): Promise<Record<string, unknown>> {
  if (url.endsWith('.ts')) return createRequire(import.meta.url)(fileURLToPath(url)) as Record<string, unknown>;
  return (await import(url)) as Record<string, unknown>;
}
