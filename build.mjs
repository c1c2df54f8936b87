// Builds dist/: one ESM bundle per entry point (the library, each worker, the command-line
// tools), and the .d.ts files from tsc. Run by `npm install` (prepare) and `npm run build`.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

const entries = [
  // [entry, bundle (under dist/), path from that bundle back to dist/]
  ['machine/index.ts', 'index', './'],
  ['workers/dma-worker.ts', 'workers/dma-worker', '../'],
  // The tools import the package itself ('viommu', external below), as users' code would.
  ['examples/demo.ts', 'examples/demo', '../'],
  ['examples/stress/cli.ts', 'bin/viommu-stress', '../'],
];

rmSync('dist', { recursive: true, force: true });
await Promise.all(
  entries.map(([entry, out, root]) =>
    build({
      entryPoints: { [out]: entry },
      outdir: 'dist',
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      packages: 'external',
      external: ['viommu'],
      sourcemap: true,
      logLevel: 'warning',
      // Lets workers/pool.ts find the worker bundle from wherever it was bundled into.
      define: { __VIOMMU_BUNDLE_ROOT__: JSON.stringify(root) },
    }),
  ),
);
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
