import { dmaCopyRatio } from './scenarios.js';

/**
 * The benchmark's page (`npm run bench -- --browser`): the DMA copy scenario of the Node
 * benchmark, unchanged, run by the package's browser build on a Web Worker (the workloads
 * module is bundled beside this page).
 */
Object.assign(globalThis, {
  probes: { dmaCopyRatio: (sizes: number[], quick: boolean) => dmaCopyRatio(sizes, quick) },
});
