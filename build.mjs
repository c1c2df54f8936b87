// Builds dist/: one ESM bundle per entry point (the library, each worker, the command-line
// tools), and the .d.ts files from tsc. Run by `npm install` (prepare) and `npm run build`.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const entries = [
  // [entry, bundle (under dist/)]
  ['machine/index.ts', 'index'],
  ['workers/dma-worker.ts', 'workers/dma-worker'],
  // The tools import the package itself ('viommu', external below), as users' code would.
  ['examples/demo.ts', 'examples/demo'],
  ['examples/stress/cli.ts', 'bin/viommu-stress'],
];
const WORKER_BUNDLE = 'workers/dma-worker.js';

/**
 * In a bundle, the DMA worker's URL is a literal relative to that bundle, written as
 * `new URL('…', import.meta.url)`: the pattern Vite, webpack 5 and Parcel follow to ship the
 * worker with an application that bundles viommu (workers/dma-worker-url.ts).
 */
function workerUrlPlugin(out) {
  const fromBundle = `${'../'.repeat(out.split('/').length - 1) || './'}${WORKER_BUNDLE}`;
  return {
    name: 'viommu-worker-url',
    setup(pluginBuild) {
      pluginBuild.onLoad({ filter: /workers[\\/]dma-worker-url\.ts$/ }, () => ({
        contents: `export function defaultDmaWorkerUrl() { return new URL(${JSON.stringify(fromBundle)}, import.meta.url); }\n`,
        loader: 'js',
      }));
    },
  };
}

rmSync('dist', { recursive: true, force: true });
await Promise.all(
  entries.map(([entry, out]) =>
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
      plugins: [workerUrlPlugin(out)],
    }),
  ),
);
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
