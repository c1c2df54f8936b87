// Bundles the benchmark next to the built package, so that `npm run bench` measures the code
// that ships (dist/, imported as 'viommu') rather than the TypeScript sources under a loader.
// Each worker-side module is its own entry: the benchmark loads them by URL in the workers.
import { build } from 'esbuild';

await build({
  entryPoints: {
    run: 'test/bench/run.ts',
    workloads: 'test/bench/workloads.ts',
    'stress-worker': 'test/stress/stress-worker.ts',
  },
  outdir: '.bench',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  external: ['viommu', 'viommu/v86'],
  logLevel: 'warning',
});
