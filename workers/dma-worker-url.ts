/**
 * Where the DMA worker's module is. From the TypeScript sources (tests run through tsx) it is
 * the .ts file beside this one. The package build (build.mjs) replaces this module with one
 * whose URL is the worker bundle relative to the bundle that contains it, written as a
 * literal `new URL('…', import.meta.url)` so that bundlers that follow that pattern (Vite,
 * webpack 5, Parcel) ship the worker too. Embedders whose bundler does not (esbuild) pass
 * options.workerUrl.
 */
export function defaultDmaWorkerUrl(): URL {
  return new URL('./dma-worker.ts', import.meta.url);
}
