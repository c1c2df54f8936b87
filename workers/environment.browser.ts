import type * as NodeEnvironment from './environment.js';
import { navigatorConcurrency } from './web-platform.js';
import { WebWorkerPool } from './web-worker-pool.js';

/**
 * What the data plane needs from the JavaScript environment, in a web page: module Web
 * Workers, navigator.hardwareConcurrency, import(). The browser build (build.mjs) puts this
 * module where environment.ts is; each export has the type of its Node twin.
 */

export const createDmaWorkerPool: typeof NodeEnvironment.createDmaWorkerPool = (options) => new WebWorkerPool(options);

/** The number of workers when options.workers is not given: the logical processors the browser reports. */
export const hardwareConcurrency: typeof NodeEnvironment.hardwareConcurrency = () => navigatorConcurrency() ?? 4;

/** Loads an ES module by URL (custom device models, runInWorker modules), in the page and in workers alike. */
export const loadModule: typeof NodeEnvironment.loadModule = async (url) =>
  (await import(/* webpackIgnore: true */ /* @vite-ignore */ url)) as Record<string, unknown>;
