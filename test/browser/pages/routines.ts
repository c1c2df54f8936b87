import * as viommu from 'viommu';
import { routineProbe } from './routine-probe.js';

/** The routine probe in a page, and createPlatform on its own (for the page without cross-origin isolation). */
Object.assign(globalThis, {
  probes: {
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
