import * as viommu from 'viommu';
import { routineProbe } from './routine-probe.js';

/** The routine probe in a page, and createPlatform on its own (for the page without cross-origin isolation). */
/** A platform whose worker script is not there: every DMA fails, saying so, and nothing hangs. */
async function missingWorker() {
  const errors: string[] = [];
  const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));
  const platform = await viommu.createPlatform({
    workers: 2,
    memoryBytes: 1024 * 1024,
    workerUrl: new URL('./no-such-worker.js', location.href),
    onCallbackError: (error) => errors.push(describe(error)),
  });
  const fn = platform.bus.addFunction({ bus: 0, device: 1, function: 0 });
  const first = await platform.dma(fn, { address: 0, length: 4 }).then(() => 'done', describe);
  const second = await platform.dma(fn, { address: 0, length: 4 }).then(() => 'done', describe);
  await platform.close();
  return { first, second, errors, workers: platform.workerStats().length };
}

Object.assign(globalThis, {
  probes: {
    missingWorker,
    routines: () => routineProbe(viommu),
    createPlatform: () =>
      viommu.createPlatform({ workers: 1, memoryBytes: 1024 * 1024 }).then(
        async (platform) => {
          await platform.close();
          return { created: true, crossOriginIsolated };
        },
        (error: unknown) => ({ created: false, crossOriginIsolated, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }),
      ),
  },
});
